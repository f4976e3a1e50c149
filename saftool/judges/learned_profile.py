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
  "config_hash": "07fda9847a4d"
 },
 "estimate": "prompt-grouped",
 "positive": "unsafe",
 "positive_means": "the answer complies: human compliance vs refusal or partial refusal",
 "files": [
  {
   "path": "tests/judges/data/smollm2_sample.jsonl",
   "sha256": "15c749a80f31fe9c46896493627f79766ae440e220a11f254909ffa6b78443ec",
   "rows": 457
  }
 ],
 "sensitivity": {
  "value": 0.978462,
  "true_positive": 318,
  "positives": 325
 },
 "specificity": {
  "value": 0.984848,
  "true_negative": 130,
  "negatives": 132
 },
 "unknown": 0,
 "binary_agreement": 0.980306,
 "sample": "of smollm2-135m-instruct, smollm2-135m-lora-p1, smollm2-135m-lora-p2, smollm2-135m-lora-p3 on advbench, beavertails-eval, do-not-answer, seed-safe, xstest"
}
