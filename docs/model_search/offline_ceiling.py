"""What the model's additive design can reach offline: scikit-learn's logistic regression over
the same standardised features and hat functions, fitted on days 0-90 of a seed `collect.py`
recorded, against the batch gradient-boosted model, on the snapshots of days 90-180.

    .venv/bin/python docs/model_search/offline_ceiling.py 1
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import orjson
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction import DictVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from churnstream.models.churn import expand, model_input
from churnstream.streams.simulation import DEFAULT_START

seed = int(sys.argv[1])
rows = orjson.loads(Path(f".cache/model_search/seed{seed}.json").read_bytes())
split = DEFAULT_START.timestamp() + 90 * 86400
train = [r for r in rows if r[2] < split]
test = [r for r in rows if r[2] >= split]
vec = DictVectorizer(sparse=False)
x_train = vec.fit_transform([model_input(r[0]) for r in train])
x_test = vec.transform([model_input(r[0]) for r in test])
y_train = np.array([r[1] for r in train])
y_test = np.array([r[1] for r in test])
scaler = StandardScaler().fit(x_train)
names = vec.feature_names_


def design(x: np.ndarray) -> list[dict[str, float]]:
    return [expand(dict(zip(names, z, strict=True))) for z in scaler.transform(x)]


hats = DictVectorizer(sparse=True)
d_train = hats.fit_transform(design(x_train))
d_test = hats.transform(design(x_test))
for c in (0.01, 0.03, 0.1, 1.0):
    lr = LogisticRegression(C=c, max_iter=2000).fit(d_train, y_train)
    auc = roc_auc_score(y_test, lr.predict_proba(d_test)[:, 1])
    print(f"additive logistic regression, C={c}: {auc:.4f}")
gbm = HistGradientBoostingClassifier(max_iter=300, learning_rate=0.05, random_state=seed)
gbm.fit(x_train, y_train)
print(
    f"gradient boosting (evaluate's batch model): {roc_auc_score(y_test, gbm.predict_proba(x_test)[:, 1]):.4f}"
)
