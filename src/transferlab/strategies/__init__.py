"""Strategies as data: stage specs, the plan compiler and its renderings."""

from transferlab.strategies.plan import GroupInfo, Plan, StepPlan, compile_plan, param_group_name
from transferlab.strategies.render import format_plan, plan_to_dict
from transferlab.strategies.schedule import lr_factor
from transferlab.strategies.spec import StageSpec, StrategySpec, parse_stage, parse_strategy

__all__ = [
    "GroupInfo",
    "Plan",
    "StageSpec",
    "StepPlan",
    "StrategySpec",
    "compile_plan",
    "format_plan",
    "lr_factor",
    "param_group_name",
    "parse_stage",
    "parse_strategy",
    "plan_to_dict",
]
