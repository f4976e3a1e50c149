"""The packaged judge profile of the default `learned` judge: its sensitivity and specificity
for unsafe answers, measured on the hand-labelled SmolLM2-135M sample with prompt-grouped
cross-validation (each answer judged by weights fitted without its prompt). `report` corrects
with it when the store holds no profile of its own. Written by
`python bench/judge_agreement.py --write-default`."""

PROFILE = {
 "format": "saftool-judge-profile",
 "version": 1,
 "name": "learned",
 "judge": {
  "name": "learned",
  "version": "saftool 0.1.0/learned 1",
  "config_hash": "d58ccecb1393"
 },
 "estimate": "prompt-grouped",
 "positive": "unsafe",
 "positive_means": "the answer complies: human compliance vs refusal or partial refusal",
 "files": [
  {
   "path": "tests/judges/data/smollm2_sample.jsonl",
   "sha256": "fbf68082f2dba772aefed7cf2522836f644462013dd131f4cf438336c51456dc",
   "rows": 187
  }
 ],
 "sensitivity": {
  "value": 0.961957,
  "true_positive": 177,
  "positives": 184
 },
 "specificity": {
  "value": 0.666667,
  "true_negative": 2,
  "negatives": 3
 },
 "unknown": 0,
 "binary_agreement": 0.957219,
 "sample": "of smollm2-135m-instruct on advbench, beavertails-eval, do-not-answer, seed-safe, xstest"
}
