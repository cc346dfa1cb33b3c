"""Simulation results as estimators and pages, and the merge of task outputs (spec/results.md).

EstimatorError (ValueError)   an estimator list that breaks the format
MergeError                    task outputs that cannot be merged (code: merge_failed,
                              tasks_failed)
"""

from cyclotron.estimators.merge import MergeError, merge_task_results, order_by_outputs
from cyclotron.estimators.model import (
    EstimatorError,
    core_name,
    find_estimator,
    validate_estimators,
)

__all__ = [
    "EstimatorError",
    "MergeError",
    "core_name",
    "find_estimator",
    "merge_task_results",
    "order_by_outputs",
    "validate_estimators",
]
