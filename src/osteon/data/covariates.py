"""Clinical covariates (age, sex, BMI, body part ...) as a fixed-length, normalised vector.

Numeric columns are z-scored with the training split's mean and standard deviation; text columns
are one-hot encoded over the categories seen in training. Every column gets a "missing" indicator,
and missing values are encoded as 0, so a model can learn what absence means instead of the rows
being dropped. The fitted encoder is a plain dict saved in the checkpoint.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from osteon.errors import ConfigError


@dataclass
class CovariateEncoder:
    """Fitted encoding of covariate columns. Build with :meth:`fit`; persist with :meth:`to_dict`."""

    columns: list[str] = field(default_factory=list)
    numeric: dict[str, tuple[float, float]] = field(default_factory=dict)  # column → (mean, std)
    categories: dict[str, list[str]] = field(default_factory=dict)  # column → categories seen in training

    @classmethod
    def fit(cls, frame: pd.DataFrame, columns: list[str]) -> CovariateEncoder:
        missing = [c for c in columns if c not in frame]
        if missing:
            raise ConfigError(
                f"Covariate column(s) {missing} are not in the Manifest (columns: {list(frame.columns)}). "
                "Fix: correct --covariates."
            )
        encoder = cls(columns=list(columns))
        for column in columns:
            values = frame[column]
            numbers = pd.to_numeric(values, errors="coerce")
            if values.notna().sum() and numbers.notna().sum() == values.notna().sum():
                std = float(numbers.std(ddof=0)) or 1.0
                encoder.numeric[column] = (float(numbers.mean()), std)
            else:
                encoder.categories[column] = sorted(values.dropna().astype(str).unique().tolist())
        return encoder

    @property
    def dim(self) -> int:
        numeric = sum(2 for c in self.columns if c in self.numeric)
        categorical = sum(len(self.categories[c]) + 1 for c in self.columns if c in self.categories)
        return numeric + categorical

    def transform(self, frame: pd.DataFrame) -> np.ndarray:
        """``(N, dim)`` float32; a column absent from ``frame`` is treated as all missing."""
        parts = []
        n = len(frame)
        for column in self.columns:
            values = frame[column] if column in frame else pd.Series([pd.NA] * n, index=frame.index)
            if column in self.numeric:
                mean, std = self.numeric[column]
                numbers = pd.to_numeric(values, errors="coerce").to_numpy(np.float64)
                missing = np.isnan(numbers)
                parts.append(np.where(missing, 0.0, (numbers - mean) / std)[:, None])
                parts.append(missing[:, None].astype(np.float64))
            else:
                cats = self.categories[column]
                text = values.astype("string")
                onehot = (
                    np.stack([(text == c).fillna(False).to_numpy(bool) for c in cats], axis=1)
                    if cats
                    else (np.zeros((n, 0)))
                )
                parts.append(onehot.astype(np.float64))
                parts.append(text.isna().to_numpy(bool)[:, None].astype(np.float64))
        if not parts:
            return np.zeros((n, 0), dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> CovariateEncoder:
        return cls(
            columns=list(values["columns"]),
            numeric={k: (float(v[0]), float(v[1])) for k, v in values["numeric"].items()},
            categories={k: list(v) for k, v in values["categories"].items()},
        )
