"""``bandit-pipeline export obp``: the logged exploration of a surface in Open Bandit
Pipeline's ``bandit_feedback`` layout (Saito et al. 2021, "Open Bandit Dataset and
Pipeline"), so that OBP's estimators run on it unchanged (the mapping is in
docs/data-science.md).

One round is one exploration impression: ``action`` indexes the item shown in
``actions`` (the JSON file), ``position`` is the exploration slot (0: the first), the
``reward`` the normalised reward of docs/posterior.md, ``pscore`` the served policy's
propensity of that item in that slot. Rounds differ in which items they could show; the
``eligible`` mask (an extra key, which OBP ignores) says which, and an evaluation
policy's ``action_dist`` must put no probability elsewhere.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from sqlalchemy import Engine

from bandit_pipeline.evaluation.logs import LoggedExploration, load_logged
from bandit_pipeline.settings import Settings
from bandit_pipeline.warehouse.sql import sql_statement

NPZ_NAME = "bandit_feedback.npz"
JSON_NAME = "bandit_feedback.json"
CONTEXT_COLUMNS = ("hour_sin", "hour_cos", "eligible_share", "slots")
NUMERIC_ACTION_COLUMNS = ("price", "availability", "freshness_index")


@dataclass(frozen=True)
class ExportResult:
    npz_path: Path
    json_path: Path
    rounds: int
    actions: int


def bandit_feedback(logged: LoggedExploration, catalog: dict[str, dict]) -> tuple[dict, dict]:
    """The ``bandit_feedback`` arrays of the logged units, and their description."""
    actions = sorted({item for context in logged.contexts for item in context.items})
    code = {item: i for i, item in enumerate(actions)}
    n_rounds, n_actions = len(logged), len(actions)
    eligible = np.zeros((n_rounds, n_actions), dtype=bool)
    context = np.zeros((n_rounds, len(CONTEXT_COLUMNS)))
    for unit in range(n_rounds):
        logged_context = logged.contexts[logged.context[unit]]
        eligible[unit, [code[item] for item in logged_context.items]] = True
        at = logged_context.decided_at
        hour = (at.hour + at.minute / 60 + at.second / 3600) / 24
        context[unit] = (
            math.sin(2 * math.pi * hour),
            math.cos(2 * math.pi * hour),
            len(logged_context.items) / max(n_actions, 1),
            logged_context.slots,
        )
    categories = sorted({str(catalog.get(item, {}).get("category") or "") for item in actions})
    action_context = np.zeros((n_actions, len(NUMERIC_ACTION_COLUMNS) + len(categories)))
    for i, item in enumerate(actions):
        row = catalog.get(item, {})
        for j, column in enumerate(NUMERIC_ACTION_COLUMNS):
            action_context[i, j] = float(row.get(column) or 0.0)
        category = str(row.get("category") or "")
        action_context[i, len(NUMERIC_ACTION_COLUMNS) + categories.index(category)] = 1.0
    feedback = {
        "n_rounds": n_rounds,
        "n_actions": n_actions,
        "action": np.array([code[item] for item in logged.item], dtype=np.int64),
        "position": logged.rank.astype(np.int64),
        "reward": logged.reward.astype(np.float64),
        "pscore": logged.propensity.astype(np.float64),
        "context": context,
        "action_context": action_context,
        # Extra keys (OBP reads only the ones above):
        "eligible": eligible,
        "click": logged.click.astype(np.int64),
        "slot": logged.slot.astype(np.int64),
        "decision_id": np.array(
            [logged.contexts[c].decision_id for c in logged.context], dtype=np.int64
        ),
    }
    description = {
        "namespace": logged.namespace,
        "surface": logged.surface,
        "since": logged.since.isoformat(),
        "until": logged.until.isoformat(),
        "n_rounds": n_rounds,
        "n_actions": n_actions,
        "len_list": int(logged.rank.max()) + 1 if n_rounds else 0,
        "actions": actions,
        "round": "one exploration impression of an explored decision",
        "action": "index into actions of the item shown",
        "position": "exploration slot, 0 the first (the response position is in slot)",
        "reward": "largest outcome weight within the attribution window / largest weight",
        "pscore": "the served policy's probability of that item in that exploration slot",
        "context_columns": list(CONTEXT_COLUMNS),
        "action_context_columns": [
            *NUMERIC_ACTION_COLUMNS,
            *(f"category={c}" for c in categories),
        ],
        "eligible": "bool (n_rounds, n_actions): the items the round could show",
        "rounds_without_impression_event": logged.without_impression,
    }
    return feedback, description


def export_obp(
    engine: Engine,
    settings: Settings,
    since,
    until,
    surface: str,
    out_dir: str | Path,
) -> ExportResult:
    """Write ``bandit_feedback.npz`` and ``bandit_feedback.json`` for one surface."""
    logged = load_logged(engine, settings, since, until, surface)
    with engine.connect() as connection:
        rows = connection.execute(
            sql_statement("evaluation/catalog_features"), {"namespace": settings.namespace}
        ).all()
    catalog = {row.item_id: row._asdict() for row in rows}
    feedback, description = bandit_feedback(logged, catalog)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    npz_path, json_path = out / NPZ_NAME, out / JSON_NAME
    np.savez_compressed(npz_path, **feedback)
    json_path.write_text(json.dumps(description, indent=1) + "\n")
    return ExportResult(npz_path, json_path, feedback["n_rounds"], feedback["n_actions"])
