"""The viewer's queries: DuckDB SQL over the tables `report.sql` loads (`ja`: every judgment of
every judge; `j`: the report judge's), returning the rows the viewer embeds.

An answer is one response, known by (model, eval_set, id); a prompt is (eval_set, id). Answers come
in the report's order: models in experiment order, then eval set, then prompt id.
"""

from __future__ import annotations

from saftool.report.sql import model_order


def sample_prompts(con, max_answers: int) -> str:
    """SQL for the prompts (eval_set, id) whose answers the viewer holds: all of them when the
    store has at most `max_answers` answers; else the same share of every eval set's prompts, chosen
    by a hash of the id, so every model keeps answers to the same prompts and pairs stay paired."""
    return f"""
        WITH p AS (SELECT eval_set, id, count(*) AS answers FROM j WHERE id IS NOT NULL GROUP BY ALL),
             share AS (SELECT least(1.0, {int(max_answers)} / greatest(1, sum(answers))::DOUBLE) AS f FROM p),
             ranked AS (SELECT eval_set, id,
                               row_number() OVER (PARTITION BY eval_set ORDER BY hash(id), id) AS r,
                               count(*) OVER (PARTITION BY eval_set) AS total
                        FROM p)
        SELECT eval_set, id FROM ranked, share WHERE r <= ceil(f * total)
    """


def prompts(con, max_answers: int) -> str:
    """One row per kept prompt: kind, text, input and category (the first answer's, by model)."""
    return f"""
        WITH kept AS ({sample_prompts(con, max_answers)})
        SELECT eval_set, id, arg_min(kind, model) AS kind, arg_min(prompt, model) AS prompt,
               arg_min(coalesce(input, ''), model) AS input, arg_min(category, model) AS category
        FROM j JOIN kept USING (eval_set, id)
        GROUP BY ALL ORDER BY eval_set, id
    """


def answers(con, max_answers: int) -> str:
    """The kept answers with the report judge's verdict, in the report's order."""
    return f"""
        WITH kept AS ({sample_prompts(con, max_answers)}), ordered AS ({model_order(con)})
        SELECT j.model, j.eval_set, j.id, coalesce(j.response, '') AS response, j.label, j.safe,
               coalesce(j.rationale, '') AS rationale
        FROM j JOIN kept USING (eval_set, id) JOIN ordered o USING (model)
        ORDER BY o.position, j.eval_set, j.id
    """


def answer_count(con) -> str:
    return "SELECT count(*) AS n FROM j WHERE id IS NOT NULL"


def verdicts(con) -> str:
    """Every judge's label per answer ($judge), for the disagreement view."""
    return """
        SELECT model, eval_set, id, label FROM ja
        WHERE judge = $judge AND model IS NOT NULL AND eval_set IS NOT NULL AND id IS NOT NULL
    """


def judge_pairs(con) -> str:
    """Per pair of judges (a < b by name) that judged the same answers: the count of each
    (label_a, label_b) on those answers; agreement and kappa follow from it."""
    return """
        WITH v AS (SELECT DISTINCT ON (judge, model, eval_set, id) judge, model, eval_set, id, label FROM ja
                   WHERE judge IS NOT NULL AND model IS NOT NULL AND eval_set IS NOT NULL AND id IS NOT NULL)
        SELECT a.judge AS judge_a, b.judge AS judge_b, a.label AS label_a, b.label AS label_b, count(*) AS n
        FROM v a JOIN v b ON a.model = b.model AND a.eval_set = b.eval_set AND a.id = b.id AND a.judge < b.judge
        GROUP BY ALL ORDER BY judge_a, judge_b, label_a, label_b
    """


def tokens(con) -> str:
    """Per model and infer backend: answers and the tokens they took (as `infer` counted them)."""
    return f"""
        WITH ordered AS ({model_order(con)})
        SELECT j.model, coalesce(j.backend, '') AS backend, count(*) AS answers,
               coalesce(sum(j.prompt_tokens), 0) AS prompt_tokens,
               coalesce(sum(j.completion_tokens), 0) AS completion_tokens
        FROM j JOIN ordered o USING (model)
        GROUP BY ALL ORDER BY any_value(o.position), backend
    """
