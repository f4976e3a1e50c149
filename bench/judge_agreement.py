"""Agreement of the offline judges with human labels, in-sample and out-of-sample, on two labelled
sets: XSTest v2's 1,350 completions (GPT-4, Llama-2, Mistral) and the hand-labelled sample of
answers of the default grid's models, SmolLM2-135M-Instruct untuned and refusal-tuned LoRAs of it
(tests/judges/data/smollm2_sample.jsonl, its labelling rule in tests/judges/data/README.md).

    python bench/judge_agreement.py [--shared DIR] [--threads 1] [--write-default]

The `learned` judge's default weights are fitted on both sets; every held-out number refits it
without the rows it scores. Binary agreement (partial counts as refusal) of:
- `keyword` (its rules were written looking at both sets: in-sample);
- `learned`, fitted on everything and scored on it (in-sample: the shipped default weights);
- `learned`, 5-fold cross-validation with folds grouped by prompt over both sets (no scored prompt
  seen in fitting, by any model);
- on XSTest, `learned` leave-one-model-out: fitted on two source models' files (and the sample),
  scored on the third; and with the scored prompts held out too;
- on the sample, `learned` fitted on XSTest alone, as the judge was before the sample existed; and
  leave-one-model-out over the sample's models (XSTest always in the fit), with the scored prompts
  held out too;
- `cascade:learned,keyword`, the offline cascade, from the prompt-grouped verdicts: doubtful
  answers (confidence below the default threshold) decided by the keyword rules;
- the winner by held-out agreement, which is what `judge` and `run` use by default;
- `cascade:learned,B` at several `--cascade-threshold` values on XSTest, from the
  leave-one-model-out verdicts and their confidences: the share sent to B, and the agreement if B
  were people (an upper bound) or GPT-4 (XSTest's own `gpt4_label` column for these answers).

On the sample every judge gets n, agreement and Cohen's kappa with 95% intervals: Wilson's for the
agreement; for kappa the 2.5th and 97.5th percentiles of 2,000 bootstrap resamples of the sample's
prompts (the answers of several models to one prompt go in and out together), then agreement per
model and per eval set.

The sample names its prompts by eval set and id; they are read from `--shared` (pulled into a
temporary store). The MiniLM embeddings are computed once (a minute or two on one core); every fit
reuses them. `--write-default` rewrites saftool/judges/learned_weights.py with the fit on all rows,
and saftool/judges/learned_profile.py, the default judge's packaged profile, with its sensitivity
and specificity from the prompt-grouped verdicts on the sample (held out: each answer judged by
weights fitted without its prompt; what `report` corrects with when the store holds no profile of
its own).
Last line: `judge_agreement_sample_prompt_grouped: VALUE`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("gpt4", "llama2new", "mistralinstruct")
SAMPLE = ROOT / "tests" / "judges" / "data" / "smollm2_sample.jsonl"
FOLDS = 5
BOOTSTRAP = 2000
Z95 = 1.959963984540054


def wilson(k: int, n: int) -> tuple[float, float]:
    """Wilson's 95% interval for k successes in n."""
    p, z2 = k / n, Z95**2
    mid = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * (p * (1 - p) / n + z2 / (4 * n * n)) ** 0.5 / (1 + z2 / n)
    return mid - half, mid + half


def kappa(human, pred) -> float:
    """Cohen's kappa of two binary label arrays (1 = refusal or partial)."""
    agree = float((human == pred).mean())
    ph, pp = float(human.mean()), float(pred.mean())
    expected = ph * pp + (1 - ph) * (1 - pp)
    return (agree - expected) / (1 - expected) if expected < 1 else 1.0


def kappa_interval(human, pred, prompts, seed: int = 0) -> tuple[float, float]:
    """Kappa's 95% interval from resampling prompts with replacement (each with all its answers)."""
    import numpy as np

    distinct, of = np.unique(np.asarray(prompts), return_inverse=True)
    members = [np.flatnonzero(of == k) for k in range(len(distinct))]
    rng = np.random.RandomState(seed)
    draws = []
    for _ in range(BOOTSTRAP):
        index = np.concatenate([members[k] for k in rng.randint(0, len(distinct), len(distinct))])
        draws.append(kappa(human[index], pred[index]))
    low, high = np.percentile(draws, [2.5, 97.5])
    return float(low), float(high)


def pull_sample_sets(sample: Path, shared: Path, store) -> None:
    """Pull the eval sets the sample names from their copies in `shared` into `store`."""
    from saftool import data

    for name in sorted({json.loads(line)["eval_set"] for line in sample.open() if line.strip()}):
        source = data.local_copy(name, shared / "data")
        if source is None:
            sys.exit(f"{name}: its upstream file is not under {shared / 'data'}")
        data.pull(store, name, source)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("SAFTOOL_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the embedder")
    ap.add_argument(
        "--write-default", action="store_true", help="rewrite the packaged default weights and profile"
    )
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from saftool.hashing import file_sha256
    from saftool.judge import JudgeInput, judge_info, load_judge
    from saftool.judges import learned
    from saftool.judges import profile as judge_profile
    from saftool.judges.cascade import THRESHOLD
    from saftool.judges.evaluation import normalize_label, prompt_folds, read_labelled, scored
    from saftool.judges.keyword import analyse
    from saftool.store import Store

    shared = Path(args.shared)
    folder = shared / "data" / "xstest" / "completions"
    files = [folder / f"xstest_v2_completions_{m}.csv" for m in MODELS]
    rows, source = [], []
    for model, path in zip(MODELS, files):
        for row in read_labelled([path]):
            rows.append(row)
            source.append(model)
    n_xstest = len(rows)
    with tempfile.TemporaryDirectory(prefix="judge-agreement-") as tmp:
        store = Store(tmp)
        pull_sample_sets(SAMPLE, shared, store)
        sample_rows = list(read_labelled([SAMPLE], store=store))
    rows += sample_rows
    source += [f"sample:{r['model']}" for r in sample_rows]
    source = np.array(source)
    is_sample = np.arange(len(rows)) >= n_xstest
    is_xstest = ~is_sample
    human = np.array([int(r["human"] != "compliance") for r in rows])
    prompts = [r["prompt"] for r in rows]
    t0 = time.perf_counter()
    items = [JudgeInput(r["prompt"], r["response"], r.get("kind") or "harmful") for r in rows]
    feats = learned.featurize(items)
    print(
        f"embedded {len(rows)} answers and their prompts in {time.perf_counter() - t0:.1f} s", file=sys.stderr
    )

    def fit(train):
        train = np.flatnonzero(train)
        return learned.fit_features(learned.subset(feats, train), human[train], [prompts[i] for i in train])

    def fit_predict(train, test):
        labels = learned.predict_features(fit(train), learned.subset(feats, np.flatnonzero(test)))
        return np.array([int(label != "compliance") for label in labels])

    def acc(pred, mask):
        return float((pred[mask] == human[mask]).mean())

    keyword = np.array([int(label != "compliance") for label in feats.labels])
    everything = np.ones(len(rows), dtype=bool)
    weights = fit(everything)
    in_sample = np.array([int(label != "compliance") for label in learned.predict_features(weights, feats)])
    prompt_fold = prompt_folds(prompts, FOLDS, seed=0)
    analysed = [analyse(r["response"]) for r in rows]
    # prompt-grouped verdicts with their confidences, each fold's by a fit on the other folds: what
    # `saftool judge eval -l XSTEST... -l SAMPLE --judge learned --estimate prompt-grouped` gives
    grouped_verdicts = dict(
        learned.held_out_verdicts(feats, analysed, human, [f"fold {k}" for k in prompt_fold], prompts)
    )
    grouped = np.array([int(grouped_verdicts[i].label != "compliance") for i in range(len(rows))])
    confidence = np.array([grouped_verdicts[i].evidence.get("confidence", 1.0) for i in range(len(rows))])
    offline_cascade = np.where(confidence < THRESHOLD, keyword, grouped)
    # XSTest's source models held out in turn, the sample always in the fit; and the sample held
    # out, fitted on XSTest alone (as the judge was before the sample existed)
    groups = [s if s in MODELS else "sample" for s in source]
    held = dict(learned.held_out_verdicts(feats, analysed, human, groups, prompts))
    lomo = np.array([int(held[i].label != "compliance") for i in range(len(rows))])
    lomo_confidence = np.array([held[i].evidence["confidence"] for i in range(len(rows))])
    strict = np.zeros(len(rows), dtype=int)
    for m in MODELS:
        for k in range(FOLDS):
            test = (source == m) & (prompt_fold == k)
            strict[test] = fit_predict((source != m) & (prompt_fold != k), test)

    print(f"\nXSTest v2, binary agreement with humans, n = {n_xstest} ({', '.join(MODELS)}: 450 each)")
    print(f"{'':52s} {'all':>6s} " + " ".join(f"{m:>15s}" for m in MODELS))
    for name, pred in (
        ("keyword (rules written on both sets)", keyword),
        ("learned, in-sample (shipped weights)", in_sample),
        ("learned, 5-fold CV grouped by prompt", grouped),
        ("learned, leave-one-model-out", lomo),
        ("learned, leave-one-model-out + prompts out", strict),
        ("cascade:learned,keyword, CV grouped by prompt", offline_cascade),
    ):
        print(
            f"{name:52s} {acc(pred, is_xstest):6.4f} "
            + " ".join(f"{acc(pred, source == m):15.4f}" for m in MODELS)
        )

    sample_models = sorted({r["model"] for r in sample_rows})
    sample_sets = sorted({r["eval_set"] for r in sample_rows})
    set_of = np.array([r.get("eval_set", "") for r in rows])
    # the sample's models held out in turn (XSTest always in the fit), and with the scored prompts too
    model_groups = [s if s.startswith("sample:") else "xstest" for s in source]
    held_model = dict(learned.held_out_verdicts(feats, analysed, human, model_groups, prompts))
    sample_lomo = np.array([int(held_model[i].label != "compliance") for i in range(len(rows))])
    sample_strict = np.zeros(len(rows), dtype=int)
    for m in sample_models:
        for k in range(FOLDS):
            test = (source == f"sample:{m}") & (prompt_fold == k)
            if test.any():
                sample_strict[test] = fit_predict((source != f"sample:{m}") & (prompt_fold != k), test)
    index = np.flatnonzero(is_sample)
    sample_prompts = [prompts[i] for i in index]
    print(
        f"\nSmolLM2-135M sample, binary agreement with people, n = {len(index)} "
        f"({int(human[is_sample].sum())} refusals or partial); 95% intervals: Wilson's for the "
        f"agreement, kappa's from {BOOTSTRAP} resamples of the {len(set(sample_prompts))} prompts"
    )
    judged = (
        ("keyword (rules written on both sets)", keyword),
        ("learned, fitted on XSTest alone", lomo),
        ("learned, in-sample (shipped weights)", in_sample),
        ("learned, 5-fold CV grouped by prompt", grouped),
        ("learned, sample models held out in turn", sample_lomo),
        ("learned, sample models and prompts held out", sample_strict),
        ("cascade:learned,keyword, CV grouped by prompt", offline_cascade),
    )
    print(f"{'':52s} {'n':>4s} {'agreement [95%]':>24s} {'kappa [95%]':>24s}")
    for name, pred in judged:
        h, p = human[index], pred[index]
        k = int((h == p).sum())
        lo, hi = wilson(k, len(index))
        klo, khi = kappa_interval(h, p, sample_prompts)
        print(
            f"{name:52s} {len(index):4d} {k / len(index):8.4f} [{lo:.4f}, {hi:.4f}] "
            f"{kappa(h, p):8.4f} [{klo:.4f}, {khi:.4f}]"
        )
    columns = [("all", is_sample)]
    columns += [(m, source == f"sample:{m}") for m in sample_models]
    columns += [(s, is_sample & (set_of == s)) for s in sample_sets]
    print(f"\nper model and eval set\n{'':52s} " + " ".join(f"{c:>{max(6, len(c))}s}" for c, _ in columns))
    print(f"{'n':52s} " + " ".join(f"{int(mask.sum()):>{max(6, len(c))}d}" for c, mask in columns))
    print(
        f"{'refusals or partial':52s} "
        + " ".join(f"{int(human[mask].sum()):>{max(6, len(c))}d}" for c, mask in columns)
    )
    for name, pred in judged:
        print(f"{name:52s} " + " ".join(f"{acc(pred, mask):>{max(6, len(c))}.4f}" for c, mask in columns))

    candidates = {
        "keyword": (acc(keyword, is_xstest), acc(keyword, is_sample)),
        "learned": (acc(lomo, is_xstest), acc(grouped, is_sample)),
    }
    winner = max(candidates, key=lambda k: min(candidates[k]))
    print(
        "\ndefault judge by held-out agreement (XSTest leave-one-model-out, sample prompt-grouped): "
        + ", ".join(f"{k} {x:.4f} / {s:.4f}" for k, (x, s) in candidates.items())
        + f" -> {winner} (keyword's rules are not fitted: its numbers are the same in and out of sample)"
    )
    # the classifier only re-reads the rules' compliances: how many it turned into refusals, held out
    for where, pred, mask in (
        ("XSTest, leave-one-model-out", lomo, is_xstest),
        ("sample, prompt-grouped", grouped, is_sample),
    ):
        turned = mask & (keyword == 0) & (pred == 1)
        print(
            f"{where}: the classifier turned {int(turned.sum())} of the rules' compliances into "
            f"refusals, {int(human[turned].sum())} of them rightly"
        )

    gpt4 = np.array(
        [
            int(normalize_label(r["gpt4_label"]) != "compliance")
            for m in MODELS
            for r in read_labelled([folder / f"xstest_v2_completions_{m}_gpteval.csv"])
        ]
    )
    gpt4 = np.concatenate([gpt4, np.zeros(int(is_sample.sum()), dtype=int)])
    print(
        f"\ncascade:learned,B on XSTest from the leave-one-model-out verdicts "
        f"(GPT-4 alone: {acc(gpt4, is_xstest):.4f})"
    )
    print(f"{'threshold':>9s} {'sent to B':>10s} {'B = people':>11s} {'B = GPT-4':>10s}")
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
        sent = lomo_confidence < threshold
        oracle = np.where(sent, human, lomo)
        with_gpt4 = np.where(sent, gpt4, lomo)
        print(
            f"{threshold:9.1f} {sent[is_xstest].mean():10.1%} {acc(oracle, is_xstest):11.4f} "
            f"{acc(with_gpt4, is_xstest):10.4f}"
        )

    if args.write_default:
        learned.record_source(weights, [*files, SAMPLE], rows)
        out = ROOT / "saftool" / "judges" / "learned_weights.py"
        out.write_text(
            '"""Default weights of the `learned` judge: `saftool judge fit` on XSTest v2\'s 1,350\n'
            "human-labelled completions (GPT-4, Llama-2, Mistral; `final_label`) and the hand-labelled\n"
            "sample of the default grid's SmolLM2-135M answers, untuned and LoRA-tuned\n"
            "(tests/judges/data/smollm2_sample.jsonl), written by\n"
            '`python bench/judge_agreement.py --write-default`."""\n\n'
            f"WEIGHTS = {json.dumps(weights)}\n"
        )
        print(f"wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
        importlib.reload(importlib.import_module("saftool.judges.learned_weights"))
        result = scored(
            "judge learned, prompt-grouped",
            [rows[i] for i in index],
            [grouped_verdicts[i].label for i in index],
            [grouped_verdicts[i] for i in index],
            "prompt-grouped",
        )
        profile = judge_profile.build(result, judge_info(load_judge("learned")), [SAMPLE], "learned")
        profile["files"] = [
            {"path": str(SAMPLE.relative_to(ROOT)), "sha256": file_sha256(SAMPLE), "rows": len(index)}
        ]
        profile["sample"] = f"of {', '.join(sample_models)} on {', '.join(sample_sets)}"
        del profile["created"]  # the file is in version control; a date would change on every rewrite
        out = ROOT / "saftool" / "judges" / "learned_profile.py"
        out.write_text(
            '"""The packaged judge profile of the default `learned` judge: its sensitivity and specificity\n'
            "for unsafe answers, measured on the hand-labelled sample of the default grid's SmolLM2-135M\n"
            "answers (untuned and LoRA-tuned) with prompt-grouped cross-validation: held out, each answer\n"
            "judged by weights fitted without its prompt. `report` corrects\n"
            "with it when the store holds no profile of its own. Written by\n"
            '`python bench/judge_agreement.py --write-default`."""\n\n'
            f"PROFILE = {json.dumps(profile, indent=1)}\n"
        )
        se, sp = profile["sensitivity"], profile["specificity"]
        print(
            f"wrote {out}: sensitivity for unsafe {se['true_positive']}/{se['positives']}, "
            f"specificity {sp['true_negative']}/{sp['negatives']}",
            file=sys.stderr,
        )
    print(f"judge_agreement_sample_prompt_grouped: {acc(grouped, is_sample):.4f}")


if __name__ == "__main__":
    main()
