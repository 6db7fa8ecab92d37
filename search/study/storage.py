"""The study's storage as the driver holds it: SQLite on disk, every trial mirrored in memory.

Why (measured, ``benchmarks/sampler_storage.py`` and ``driver_scale.py``): Optuna's TPE with
``constant_liar`` (the default since Optuna 4, and what keeps 32 concurrent trials from being drawn
on top of each other) reads every RUNNING trial again from the database for each parameter it
samples, because another worker may be writing them. Optuna's own cache (``_CachedStorage``) keeps
only finished trials, so with 32 trials running and ~20 parameters a trial, the driver spent ~2 s
per trial re-reading SQLite.

Here that reason does not hold: one driver at a time writes a search's study (the search's lock
says so; trainables never open it), so every write passes through this object, and a mirror that
applies each write the database has taken is exact. Reads come from the mirror; writes go to the
database, then to the mirror, copy-on-write like Optuna's in-memory storage, so a list of trials
read earlier keeps the states and values it had (a live ``optuna.Trial`` updates its own copy in
place, as it does with any storage). Readers in other processes (``stiltsearch pareto``,
optuna-dashboard) open the database itself.

SQLite commits were the other cost: one per sampled parameter, ~20 a trial, each waiting for the
disk. A trial's parameters are therefore held back while the sampler draws them and written in one
transaction before anything else is written about that trial: the searcher records the trial's
config right after the space has run, so they are on disk before the trial is handed to Ray. A
driver killed in between leaves a RUNNING trial with some parameters missing; a resume owes it and
the space draws the missing ones again, and nothing had started on them. Durability is SQLite's
default (``synchronous=FULL``, rollback journal): a power cut cannot corrupt ``optuna.db``, which
stays one file that can be copied and opened from a shared filesystem (no WAL).

The batch uses two of ``RDBStorage``'s private helpers (the ones Optuna's own cache calls),
checked against Optuna 5.0; ``tests/test_storage.py`` compares the mirror with the database.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Container, Sequence
from typing import Any

from optuna.distributions import BaseDistribution, check_distribution_compatibility
from optuna.storages import BaseStorage, RDBStorage
from optuna.study import StudyDirection
from optuna.study._frozen import FrozenStudy
from optuna.trial import FrozenTrial, TrialState


class MirroredStorage(BaseStorage):
    """A database storage whose trials are also kept in memory; only valid while it is the sole writer."""

    def __init__(self, backend: RDBStorage) -> None:
        self.backend = backend
        self._lock = threading.RLock()
        self._pending: dict[int, list[tuple[str, float, BaseDistribution]]] = {}  # trial id -> params not written yet
        self._param_kinds: dict[int, dict[str, BaseDistribution]] = {}  # study id -> each parameter's distribution
        self._trials: dict[int, dict[int, FrozenTrial]] = {}  # study id -> trial number -> trial
        self._where: dict[int, tuple[int, int]] = {}  # trial id -> (study id, number)
        self._directions: dict[int, list[StudyDirection]] = {}  # a study's never change; TPE asks per parameter

    def _study(self, study_id: int) -> dict[int, FrozenTrial]:
        """The mirror of one study, read from the database the first time it is needed."""
        if study_id not in self._trials:
            trials = self.backend.get_all_trials(study_id, deepcopy=False)
            self._trials[study_id] = {t.number: t for t in trials}
            self._where.update({t._trial_id: (study_id, t.number) for t in trials})
            self._param_kinds[study_id] = {name: d for t in trials for name, d in t.distributions.items()}
        return self._trials[study_id]

    def _flush(self, trial_id: int) -> None:
        """Write a trial's held-back parameters in one transaction (before any other write about it)."""
        params = self._pending.pop(trial_id, None)
        if not params:
            return
        session = self.backend.scoped_session()
        try:
            for name, value, distribution in params:
                # the previous distribution is given (the mirror checked it), so no query per parameter
                self.backend._set_trial_param_without_commit(session, trial_id, name, value, distribution, distribution)
            session.commit()
        except Exception:
            session.rollback()
            raise

    def flush(self) -> None:
        """Write every held-back parameter (the searcher's next write about a trial does it anyway)."""
        with self._lock:
            for trial_id in list(self._pending):
                self._flush(trial_id)

    def _reload(self, trial_id: int) -> None:
        """Replace a trial's mirror with the database's copy (after a write whose effect the database decides)."""
        fresh = self.backend.get_trial(trial_id)
        study_id, number = self._where[trial_id]
        self._trials[study_id][number] = fresh

    def _update(self, trial_id: int, **changes: Any) -> None:
        """Copy-on-write: the mirror's trial is replaced, never changed in place."""
        study_id, number = self._where[trial_id]
        trial = copy.copy(self._trials[study_id][number])
        for name, value in changes.items():
            setattr(trial, name, value)
        self._trials[study_id][number] = trial

    # --- trials: written to the database, then mirrored ---------------------------------------

    def create_new_trial(self, study_id: int, template_trial: FrozenTrial | None = None) -> int:
        with self._lock:
            self.flush()
            trials = self._study(study_id)
            trial_id = self.backend.create_new_trial(study_id, template_trial)
            trial = self.backend.get_trial(trial_id)
            trials[trial.number] = trial
            self._where[trial_id] = (study_id, trial.number)
            self._param_kinds[study_id].update(trial.distributions)
            return trial_id

    def set_trial_param(self, trial_id: int, param_name: str, param_value_internal: float,
                        distribution: BaseDistribution) -> None:
        """Held back until the next write about this trial (see the module's docstring); checked now,
        as the database would check it."""
        with self._lock:
            trial = self.get_trial(trial_id)
            self.check_trial_is_updatable(trial_id, trial.state)
            study_id = self._where[trial_id][0]
            kinds = self._param_kinds[study_id]
            if param_name in kinds:
                check_distribution_compatibility(kinds[param_name], distribution)
            kinds[param_name] = distribution
            self._pending.setdefault(trial_id, []).append((param_name, param_value_internal, distribution))
            self._update(trial_id,
                         params={**trial.params, param_name: distribution.to_external_repr(param_value_internal)},
                         distributions={**trial.distributions, param_name: distribution})

    def set_trial_state_values(self, trial_id: int, state: TrialState, values: Sequence[float] | None = None) -> bool:
        with self._lock:
            self._flush(trial_id)
            changed = self.backend.set_trial_state_values(trial_id, state, values)
            self._reload(trial_id)  # the database stamps the start and end times
            return changed

    def set_trial_intermediate_value(self, trial_id: int, step: int, intermediate_value: float) -> None:
        with self._lock:
            self._flush(trial_id)
            self.backend.set_trial_intermediate_value(trial_id, step, intermediate_value)
            self._reload(trial_id)  # rare here (the schedulers keep rung results, not the study)

    def set_trial_user_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._lock:
            self._flush(trial_id)
            self.backend.set_trial_user_attr(trial_id, key, value)
            self._update(trial_id, user_attrs={**self.get_trial(trial_id).user_attrs, key: value})

    def set_trial_system_attr(self, trial_id: int, key: str, value: Any) -> None:
        with self._lock:
            self._flush(trial_id)
            self.backend.set_trial_system_attr(trial_id, key, value)
            self._update(trial_id, system_attrs={**self.get_trial(trial_id).system_attrs, key: value})

    # --- trials: read from the mirror ----------------------------------------------------------

    def get_trial(self, trial_id: int) -> FrozenTrial:
        with self._lock:
            if trial_id not in self._where:
                return self.backend.get_trial(trial_id)  # a trial of a study not mirrored yet
            study_id, number = self._where[trial_id]
            return self._trials[study_id][number]

    def get_all_trials(self, study_id: int, deepcopy: bool = True,
                       states: Container[TrialState] | None = None) -> list[FrozenTrial]:
        with self._lock:
            trials = [t for _, t in sorted(self._study(study_id).items()) if states is None or t.state in states]
        return copy.deepcopy(trials) if deepcopy else trials

    def get_trial_id_from_study_id_trial_number(self, study_id: int, trial_number: int) -> int:
        with self._lock:
            trial = self._study(study_id).get(trial_number)
        if trial is None:
            raise KeyError(f"No trial with trial number {trial_number} exists in study with study_id {study_id}.")
        return trial._trial_id

    # --- studies: the database's, unchanged ----------------------------------------------------

    def create_new_study(self, directions: Sequence[StudyDirection], study_name: str | None = None) -> int:
        return self.backend.create_new_study(directions, study_name)

    def delete_study(self, study_id: int) -> None:
        with self._lock:
            self.flush()
            self.backend.delete_study(study_id)
            self._directions.pop(study_id, None)
            self._param_kinds.pop(study_id, None)
            for trial in self._trials.pop(study_id, {}).values():
                self._where.pop(trial._trial_id, None)

    def set_study_user_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_user_attr(study_id, key, value)

    def set_study_system_attr(self, study_id: int, key: str, value: Any) -> None:
        self.backend.set_study_system_attr(study_id, key, value)

    def get_study_id_from_name(self, study_name: str) -> int:
        return self.backend.get_study_id_from_name(study_name)

    def get_study_name_from_id(self, study_id: int) -> str:
        return self.backend.get_study_name_from_id(study_id)

    def get_study_directions(self, study_id: int) -> list[StudyDirection]:
        with self._lock:
            if study_id not in self._directions:
                self._directions[study_id] = self.backend.get_study_directions(study_id)
            return self._directions[study_id]

    def get_study_user_attrs(self, study_id: int) -> dict[str, Any]:
        return self.backend.get_study_user_attrs(study_id)

    def get_study_system_attrs(self, study_id: int) -> dict[str, Any]:
        return self.backend.get_study_system_attrs(study_id)

    def get_all_studies(self) -> list[FrozenStudy]:
        return self.backend.get_all_studies()
