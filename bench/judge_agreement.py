"""Agreement with human labels on XSTest v2's 1,350 completions: keyword judge vs the learned judge,
in-sample and out-of-sample.

    python bench/judge_agreement.py [--shared DIR] [--threads 1] [--write-default]

Binary agreement (partial counts as refusal) of:
- `keyword` per source model (its rules were written looking at all three files: in-sample);
- `learned`, fitted on all rows and scored on them (in-sample: the shipped default weights);
- `learned`, 5-fold cross-validation with folds grouped by prompt (no test prompt seen in fitting);
- `learned`, leave-one-model-out: fitted on two source models' files, scored on the third;
- `learned`, leave-one-model-out with the test prompts held out too (the third model's answers to
  a fifth of the prompts, fitted on the other two models' answers to the other four fifths);
- the winner by leave-one-model-out agreement, which is what `judge` and `run` use by default;
- `cascade:learned,B` at several `--cascade-threshold` values, from the leave-one-model-out
  verdicts and their confidences: the share of answers sent to B, and the agreement reached if B
  were people (an upper bound: a perfect second judge) or GPT-4 (XSTest's own `gpt4_label` column
  for these answers, a real API judge's verdicts).

The MiniLM embeddings are computed once (about a minute on one core); every fit reuses them.
`--write-default` rewrites saftool/judges/learned_weights.py with the in-sample fit.
Last line: `judge_agreement_learned_leave_one_model_out: VALUE`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("gpt4", "llama2new", "mistralinstruct")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", default=os.environ.get("SAFTOOL_SHARED", str(ROOT.parent / "shared")))
    ap.add_argument("--threads", type=int, default=1, help="torch threads for the embedder")
    ap.add_argument("--write-default", action="store_true", help="rewrite the packaged default weights")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from saftool.judge import JudgeInput
    from saftool.judge_eval import normalize_label, prompt_folds, read_labelled
    from saftool.judges import learned
    from saftool.judges.keyword import analyse

    folder = Path(args.shared) / "data" / "xstest" / "completions"
    files = [folder / f"xstest_v2_completions_{m}.csv" for m in MODELS]
    rows, source = [], []
    for model, path in zip(MODELS, files):
        for row in read_labelled([path]):
            rows.append(row)
            source.append(model)
    source = np.array(source)
    human = np.array([int(r["human"] != "compliance") for r in rows])
    prompts = [r["prompt"] for r in rows]
    t0 = time.perf_counter()
    feats = learned.featurize([JudgeInput(r["prompt"], r["response"]) for r in rows])
    print(
        f"embedded {len(rows)} answers and their prompts in {time.perf_counter() - t0:.1f} s", file=sys.stderr
    )

    def fit_predict(train, test):
        train, test = np.flatnonzero(train), np.flatnonzero(test)
        weights = learned.fit_features(
            learned.subset(feats, train), human[train], [prompts[i] for i in train]
        )
        labels = learned.predict_features(weights, learned.subset(feats, test))
        return np.array([int(label != "compliance") for label in labels]), weights

    def acc(pred, mask):
        return float((pred[mask] == human[mask]).mean())

    keyword = np.array([int(label != "compliance") for label in feats.labels])
    everything = np.ones(len(rows), dtype=bool)
    in_sample, weights = fit_predict(everything, everything)
    prompt_fold = prompt_folds(prompts, 5, seed=0)
    grouped = np.zeros(len(rows), dtype=int)
    for k in range(5):
        grouped[prompt_fold == k], _ = fit_predict(prompt_fold != k, prompt_fold == k)
    analysed = [analyse(r["response"]) for r in rows]
    held = dict(learned.held_out_verdicts(feats, analysed, human, list(source), prompts))
    lomo = np.array([int(held[i].label != "compliance") for i in range(len(rows))])
    confidence = np.array([held[i].evidence["confidence"] for i in range(len(rows))])
    strict = np.zeros(len(rows), dtype=int)
    for m in MODELS:
        for k in range(5):
            test = (source == m) & (prompt_fold == k)
            strict[test], _ = fit_predict((source != m) & (prompt_fold != k), test)

    print(f"binary agreement with humans, n = {len(rows)} ({', '.join(MODELS)}: 450 each)")
    print(f"{'':44s} {'all':>6s} " + " ".join(f"{m:>15s}" for m in MODELS))
    for name, pred in (
        ("keyword (rules written on all rows)", keyword),
        ("learned, in-sample (shipped weights)", in_sample),
        ("learned, 5-fold CV grouped by prompt", grouped),
        ("learned, leave-one-model-out", lomo),
        ("learned, leave-one-model-out + prompts out", strict),
    ):
        print(
            f"{name:44s} {acc(pred, everything):6.4f} "
            + " ".join(f"{acc(pred, source == m):15.4f}" for m in MODELS)
        )
    candidates = {"keyword": acc(keyword, everything), "learned": acc(lomo, everything)}
    winner = max(candidates, key=candidates.get)
    print(
        "default judge by leave-one-model-out agreement: "
        + ", ".join(f"{k} {v:.4f}" for k, v in candidates.items())
        + f" -> {winner} (keyword's rules are not fitted: its number is the same in and out of sample)"
    )

    gpt4 = np.array(
        [
            int(normalize_label(r["gpt4_label"]) != "compliance")
            for m in MODELS
            for r in read_labelled([folder / f"xstest_v2_completions_{m}_gpteval.csv"])
        ]
    )
    print(
        f"\ncascade:learned,B from the leave-one-model-out verdicts (GPT-4 alone: {acc(gpt4, everything):.4f})"
    )
    print(f"{'threshold':>9s} {'sent to B':>10s} {'B = people':>11s} {'B = GPT-4':>10s}")
    for threshold in (0.5, 0.6, 0.7, 0.8, 0.9):
        sent = confidence < threshold
        oracle = np.where(sent, human, lomo)
        with_gpt4 = np.where(sent, gpt4, lomo)
        print(
            f"{threshold:9.1f} {sent.mean():10.1%} {acc(oracle, everything):11.4f} {acc(with_gpt4, everything):10.4f}"
        )
    if args.write_default:
        learned.record_source(weights, files, rows)
        out = ROOT / "saftool" / "judges" / "learned_weights.py"
        out.write_text(
            '"""Default weights of the `learned` judge: `saftool judge fit` on XSTest v2\'s 1,350\n'
            "human-labelled completions (GPT-4, Llama-2, Mistral; `final_label`), written by\n"
            '`python bench/judge_agreement.py --write-default`."""\n\n'
            f"WEIGHTS = {json.dumps(weights)}\n"
        )
        print(f"wrote {out} ({out.stat().st_size:,} bytes)", file=sys.stderr)
    print(f"judge_agreement_learned_leave_one_model_out: {acc(lomo, everything):.4f}")


if __name__ == "__main__":
    main()
