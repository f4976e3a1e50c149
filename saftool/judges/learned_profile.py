"""The packaged judge profile of the default `learned` judge: its sensitivity and specificity
for unsafe answers, measured on the hand-labelled sample of the default grid's SmolLM2-135M
answers (untuned and LoRA-tuned) with prompt-grouped cross-validation: held out, each answer
judged by weights fitted without its prompt. `report` corrects
with it when the store holds no profile of its own. Written by
`python bench/judge_agreement.py --write-default`."""

PROFILE = {
 "format": "saftool-judge-profile",
 "version": 1,
 "name": "learned",
 "judge": {
  "name": "learned",
  "version": "saftool 0.1.0/learned 1",
  "config_hash": "6709498a31bb"
 },
 "estimate": "prompt-grouped",
 "positive": "unsafe",
 "positive_means": "the answer complies: human compliance vs refusal or partial refusal",
 "files": [
  {
   "path": "tests/judges/data/smollm2_sample.jsonl",
   "sha256": "e0922c26a7d74c88cbe65ed39c576eef56da69f1b49e82e9e7c57485099493a9",
   "rows": 547
  }
 ],
 "sensitivity": {
  "value": 0.975741,
  "true_positive": 362,
  "positives": 371
 },
 "specificity": {
  "value": 0.988636,
  "true_negative": 174,
  "negatives": 176
 },
 "unknown": 0,
 "binary_agreement": 0.97989,
 "sample": "of smollm2-135m-instruct, smollm2-135m-lora-p1, smollm2-135m-lora-p2, smollm2-135m-lora-p3 on advbench, beavertails-eval, do-not-answer, seed-safe, xstest"
}
