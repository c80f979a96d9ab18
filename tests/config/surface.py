"""The config surface as data: every key of every shipped config option, and the bad values each must refuse.

Used by ``tests/config/test_config_surface.py`` (see its docstring for the mechanism). Nothing here lists keys
by hand: :func:`walk_surface` composes each ``conf/<group>/<option>.yaml`` and walks the resolved node; the
tables below only say what a key's default cannot (a ``null`` default's type, a key that accepts ``null``, a
bad value that needs the key's meaning, a category that does not apply).
"""

from __future__ import annotations

import contextlib
import io
import re
import traceback
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import OmegaConf

from transferlab.config.compose import compose
from transferlab.config.paths import conf_dir

#: Config groups that hold no keys of their own: bundles of overrides of other groups' keys, or Hydra's settings.
BUNDLES = ("experiment", "debug", "hparams_search", "hydra")
#: The config groups whose options are walked: every folder of ``conf/`` but the bundles (read from ``conf/``,
#: so a new group is walked without being listed here).
GROUPS = tuple(sorted(p.name for p in conf_dir().iterdir() if p.is_dir() and p.name not in BUNDLES))
#: The group ``transferlab train`` parses only once the run assembles (it needs the backbone's preprocessing).
DATA = "data"
#: Every case runs with the small random backbone unless the key is the backbone group's.
SMALL_BACKBONE = "backbone=small_cnn"
#: The kinds of bad value every key gets (``empty`` covers ``''``, ``[]`` and a forbidden ``null``).
KINDS = ("type", "range", "empty")


class NotApplicable(str):
    """A bad-value category that does not apply to a key; the string is the one-line reason."""


# ---- the tables ---------------------------------------------------------------------------------------------
# Patterns are fnmatch-like (``*`` within one dotted part) over the *normalised* path: a stage's name becomes ``*``
# (``strategy.stages.*.lr_head``) and a multi-task task's keys read as the data keys they are
# (``data.tasks.low.batch_size`` → ``data.batch_size``).

#: The type of keys whose shipped default is ``null``, so it cannot be inferred from the default.
NULL_DEFAULT_TYPES: dict[str, type] = {
    "backbone.weights": str,
    "data.image_size": int,
    "data.pin_memory": bool,
    "data.on_device": bool,
    "data.classes": list,
    "data.shots_per_class": int,
    "data.label_fraction": float,
    "data.augment.random_resized_crop": float,
    "data.format": str,
    "data.label_delimiter": str,
    "data.split_column": str,
    "optimized_metric": str,
    "task.class_weights": list,
    "task.pos_weight": list,
    "strategy.stages.*.lr_backbone": float,
    "strategy.stages.*.lr_decay": float,
    "strategy.stages.*.unfreeze_max": int,
    "strategy.stages.*.patience": int,
    "strategy.stages.*.label_smoothing": float,
    "strategy.stages.*.ema_decay": float,
    "strategy.stages.*.lr": str,
    "strategy.auto.recipe": str,
    "trainer.benchmark": bool,
    "trainer.gradient_clip_val": float,
    "trainer.limit_*_batches": float,
}

#: Keys where ``null`` is a valid value (so the ``null`` case is not generated), with what it means.
NULLABLE: dict[str, str] = {
    "tags": "no tags",
    "feature_cache": "the defaults",
    "feature_cache.dir": "features in memory only",
    "callbacks.checkpoint": "the defaults",
    "callbacks.progress_bar": "the defaults",
    "callbacks.extra": "no extra callbacks",
    "backbone.weights": "random init",
    "data.image_size": "the backbone's input size",
    "data.pin_memory": "pin when CUDA is available",
    "data.on_device": "on the GPU when the splits fit",
    "data.classes": "all ten digits",
    "data.shots_per_class": "every training sample",
    "data.label_fraction": "every training sample",
    "data.augment": "no augmentation",
    "data.num_samples": "the default split sizes",
    "data.augment.*": "that augmentation off",
    "data.loss_weights": "weight 1 for every task",
    "data.format": "the format from the file's suffix",
    "data.label_delimiter": "one label per cell",
    "data.split_column": "splits by the fractions",
    "optimized_metric": "the task's own (val/acc, val/map)",
    "task.class_weights": "every class weighs 1",
    "task.pos_weight": "every positive weighs 1",
    "regularizer.name": "no regularizer",
    "strategy.stages.*": "the stage switched off",
    "strategy.stages.*.lr_backbone": "the head's learning rate",
    "strategy.stages.*.lr_decay": "no layer-wise decay",
    "strategy.stages.*.unfreeze_every": "a fixed trainable set",
    "strategy.stages.*.unfreeze_max": "unfreeze every group",
    "strategy.stages.*.patience": "no plateau rule",
    "strategy.stages.*.label_smoothing": "the task group's",
    "strategy.stages.*.ema_decay": "no weight average",
    "strategy.stages.*.lr": "the rates as given",
    "strategy.auto.recipe": "chosen from the data",
    "strategy.stages.*.head_init": "the head as the previous stage left it",
    "strategy.adapter.alpha": "2 × rank",
    "trainer.benchmark": "Lightning's default",
    "trainer.deterministic": "Lightning's default",
    "trainer.gradient_clip_val": "no clipping",
    "trainer.limit_*_batches": "every batch",
    "trainer.channels_last": "auto",
    "trainer.compile": "off",
}

#: Where the type's rule does not fit the key's meaning: ``{pattern: {kind: value or NotApplicable(reason)}}``.
SPECIAL: dict[str, dict[str, str]] = {
    # fractions get a value above 1 (a count's -3 would not test the upper bound)
    "data.val_fraction": {"range": "1.5"},
    "data.test_fraction": {"range": "1.5"},
    "data.label_fraction": {"range": "1.5"},
    "data.augment.random_resized_crop": {"range": "1.5"},
    "data.augment.color_jitter": {"range": "1.5"},
    "strategy.head_dropout": {"range": "1.5"},
    "strategy.adapter.dropout": {"range": "1.5"},
    "strategy.stages.*.lr_decay": {"range": "1.5"},
    "strategy.stages.*.label_smoothing": {"range": "1.0"},
    "strategy.stages.*.ema_decay": {"range": "1.0"},
    "strategy.stages.*.mix_prob": {"range": "1.5"},
    "strategy.stages.*.patience": {"range": "0"},
    "data.augment.random_erasing": {"range": "1.5"},
    "data.augment.rand_augment": {"range": "31"},
    "trainer.limit_*_batches": {"range": "1.5"},
    "data.augment.rotate": {"range": "181"},
    "data.classes": {"range": "[3,11]"},
    "task_name": {"range": "a/b"},
    "backbone.name": {"range": "tv:no_such_net"},
    "backbone.weights": {"range": "no_such_file.safetensors"},
    # a list of device indices is a valid devices value, so the wrong type is a fraction
    "trainer.devices": {"type": "1.5"},
    # a list is the valid type of weights (its length is the assembly's check, against the classes): a mapping
    # is the wrong type, a negative weight out of range
    "task.class_weights": {"type": "{a:1}", "range": "[1,-1]"},
    "task.pos_weight": {"type": "{a:1}", "range": "[1,-1]"},
    "callbacks.extra": {"range": "{bad: 1}"},  # an entry without _target_ (Hydra wants +callbacks.extra.bad=…)
    "strategy.adapter.target_modules": {"range": "[no_such_module]"},
    "tags": {"range": NotApplicable("free-form labels: any word or number is a valid tag")},
    "strategy.name": {"range": NotApplicable("a free-form display name: any non-empty word is valid")},
    "paths.output_root": {"range": NotApplicable("any folder is valid; an unwritable one is the run-dir check's")},
    "data.decoded_cache.dir": {
        "range": NotApplicable("any folder is valid; an unusable one falls back to live decoding (logged)")
    },
    "paths.data_dir": {"range": NotApplicable("any folder is valid; the data group checks the folder it reads")},
    "feature_cache.dir": {"range": NotApplicable("any folder is valid; it is created when features are written")},
    "logger.mlflow.experiment_name": {"range": NotApplicable("any non-empty name is a valid MLflow experiment")},
}

#: The category that does not apply to a whole type of key.
NOT_APPLICABLE_BY_TYPE: dict[type, dict[str, NotApplicable]] = {
    bool: {"range": NotApplicable("true/false has no range: any other value is a wrong type")},
    dict: {"range": NotApplicable("a group of keys has no range: each of its keys is in the matrix itself")},
}

#: Bad values whose check needs the built backbone (its layer groups or module names): ``transferlab validate``
#: builds it and refuses them; ``transferlab train`` refuses them when the run assembles, like data keys.
NEEDS_BACKBONE: dict[str, dict[str, str]] = {
    "strategy.stages.*.trainable": {"range": "layer-group names are the built backbone's"},
    "strategy.adapter.target_modules": {"range": "module names are the built backbone's"},
}

#: The wrong-type, out-of-range and empty value of each type when no table says otherwise.
BY_TYPE: dict[type, dict[str, str]] = {
    bool: {"type": "maybe"},
    int: {"type": "abc", "range": "-3"},
    float: {"type": "abc", "range": "-3.0"},
    str: {"type": "[1,2]", "range": "no_such_value"},
    list: {"type": "3"},  # what is out of range for a list depends on the key: SPECIAL says
    dict: {"type": "3"},
}

_STAGE = re.compile(r"^strategy\.(recipes\.[^.]+\.)?stages\.[^.]+")  # strategy=auto's recipes: stages alike
_TASK = re.compile(r"^data\.tasks\.[^.]+\.")


def normalise(path: str) -> str:
    """The path as the tables spell it: ``strategy.stages.<stage>`` → ``…stages.*``, a task's keys → ``data.*``."""
    return _TASK.sub("data.", _STAGE.sub("strategy.stages.*", path))


def _matches(pattern: str, name: str) -> bool:
    """fnmatch-like, but ``*`` stays within one dotted part (``strategy.stages.*`` is not its keys)."""
    return re.fullmatch(re.escape(pattern).replace(r"\*", r"[^.]*"), name) is not None


def lookup(table: Mapping[str, Any], path: str) -> Any:
    """The entry of the first pattern in ``table`` that matches ``path`` (normalised), else ``None``."""
    name = normalise(path)
    return next((v for k, v in table.items() if _matches(k, name)), None)


# ---- the keys -----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One key of the surface, as the first option that has it (with this default type) ships it.

    Attributes:
        path: Full dotted path (``strategy.stages.finetune.lr_head``).
        group: Its config group (``""`` for a top-level key of ``train.yaml``).
        option: The option it was found in (``finetune``), ``""`` for a top-level key.
        default: The resolved default of that option.
        baseline: The overrides that select the option (and its companions); a case adds its one bad value.
    """

    path: str
    group: str
    option: str
    default: Any
    baseline: tuple[str, ...]

    @property
    def kind(self) -> type:
        """The key's type: its default's, or the table's for a ``null`` default (``None`` if neither says)."""
        if self.default is None:
            return lookup(NULL_DEFAULT_TYPES, self.path)
        return dict if isinstance(self.default, Mapping) else type(self.default)

    @property
    def dedup(self) -> tuple[str, str]:
        """Keys with the same path and default type are the same case in two options.

        The keys of different stages (``strategy.stages.<stage>.<key>``) count as one path: one parser
        (``strategies/spec.py::parse_stage``) checks every stage's keys alike, so testing ``lr_head`` of each of
        the shipped stages again would only repeat the same check (and CI's time).
        """
        path = re.sub(r"^strategy\.recipes\.[^.]+\.stages\.[^.]+", "strategy.recipes.*.stages.*", self.path)
        return re.sub(r"^strategy\.stages\.[^.]+", "strategy.stages.*", path), type(self.default).__name__


def leaves(node: Any, prefix: str, *, root: bool = True) -> Iterator[tuple[str, Any]]:
    """Every key under ``node``, depth first; a group of keys (a non-empty mapping) is a key itself, and so are
    its keys (``root=False``: not ``node`` itself, a config group's root such as ``data``, which selects an option).
    """
    if root:
        yield prefix, node
    if isinstance(node, Mapping) and node:
        for key, value in node.items():
            yield from leaves(value, f"{prefix}.{key}")


def options(group: str) -> list[str]:
    """The options of a config group, as shipped in ``conf/<group>/``."""
    return sorted(p.stem for p in (conf_dir() / group).glob("*.yaml"))


def top_level_keys() -> list[str]:
    """The top-level keys that ``conf/train.yaml`` itself sets (its ``defaults`` list excepted)."""
    own = OmegaConf.load(conf_dir() / "train.yaml")
    return [str(k) for k in own if k != "defaults"]


Companions = Callable[[str, str, Mapping[str, Any]], list[str]]


def walk_surface(companions: Companions, only: Mapping[str, str] | None = None) -> list[Key]:
    """Compose every option of every group, walk its node, and keep the first option of each (path, type).

    Args:
        companions: ``(group, option, composed node) → overrides`` that the option needs to be valid here
            (a weights file for ``backbone=checkpoint``, a folder for ``data.root``, …).
        only: Group → the one option to walk (the fast subset); ``None`` walks them all.
    """
    found: dict[tuple[str, str], Key] = {}
    for group in GROUPS:
        for option in options(group) if only is None else [only[group]]:
            selected = [f"{group}={option}"] if group == "backbone" else [SMALL_BACKBONE, f"{group}={option}"]
            node = OmegaConf.to_container(compose(selected)[group], resolve=True)
            extra = companions(group, option, node)
            if extra:  # composed again: the companions' values are the defaults the cases start from
                node = OmegaConf.to_container(compose([*selected, *extra])[group], resolve=True)
            for path, default in leaves(node, group, root=False):
                key = Key(path, group, option, default, (*selected, *extra))
                found.setdefault(key.dedup, key)
    resolved = OmegaConf.to_container(compose([SMALL_BACKBONE]), resolve=True)
    for name in top_level_keys():
        for path, default in leaves(resolved[name], name):
            key = Key(path, "", "", default, (SMALL_BACKBONE,))
            found.setdefault(key.dedup, key)
    return list(found.values())


# ---- the bad values -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    """One bad value of one key: ``<key.path>=<value>`` added to the key's baseline."""

    key: Key
    kind: str
    value: str

    @property
    def override(self) -> str:
        """The override as typed on the command line."""
        return f"{self.key.path}={self.value}"

    @property
    def overrides(self) -> list[str]:
        """The whole command line after ``transferlab <command>``."""
        return [*self.key.baseline, self.override]

    @property
    def checked_before_hydra(self) -> bool:
        """Whether ``transferlab train`` must refuse it in its preflight (else when the run assembles)."""
        return self.key.group != DATA and self.kind not in (lookup(NEEDS_BACKBONE, self.key.path) or {})

    def __str__(self) -> str:
        return f"{self.kind}: {self.override}" + (f" ({self.key.group}={self.key.option})" if self.key.option else "")


def bad_values(key: Key) -> tuple[list[Case], dict[str, NotApplicable]]:
    """The cases of one key, and the categories that do not apply to it (with the reason).

    Raises:
        LookupError: When the key's type cannot be inferred and no table gives it (a new key whose default is
            ``null``): add it to :data:`NULL_DEFAULT_TYPES`.
    """
    kind = key.kind
    if kind not in BY_TYPE:
        raise LookupError(
            f"{key.path} (conf/{key.group}/{key.option}.yaml): default {key.default!r} says nothing about its type; "
            "add its type to NULL_DEFAULT_TYPES in tests/config/surface.py"
        )
    rule = {**BY_TYPE[kind], **NOT_APPLICABLE_BY_TYPE.get(kind, {}), **(lookup(SPECIAL, key.path) or {})}
    cases: list[Case] = []
    skipped: dict[str, NotApplicable] = {}
    for category in ("type", "range"):
        value = rule.get(category)
        if value is None:
            raise LookupError(f"{key.path}: no {category} rule for type {kind.__name__}")
        if isinstance(value, NotApplicable):
            skipped[category] = value
        else:
            cases.append(Case(key, category, value))
    cases.append(Case(key, "empty", "''"))
    if kind is list and key.default:  # (``key={}`` merges into a group of keys: it changes nothing)
        cases.append(Case(key, "empty", "[]"))
    if lookup(NULLABLE, key.path) is None:
        cases.append(Case(key, "empty", "null"))
    return cases, skipped


# ---- running a case -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    """How a command ended: its exit status (or the exception that escaped) and its stderr."""

    status: Any
    stderr: str


def run_in_process(main: Callable[[list[str]], None], argv: list[str]) -> Outcome:
    """Run ``transferlab <argv>`` in this process; an exception other than ``SystemExit`` is a traceback."""
    err, out = io.StringIO(), io.StringIO()
    status: Any = 0
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            main(argv)
        except SystemExit as exit_:
            status = exit_.code
        except BaseException as raised:
            status = f"raised {type(raised).__name__}"
            err.write("".join(traceback.format_exception(raised)))
    return Outcome(status, err.getvalue())


def naming_line(text: str, path: str) -> str | None:
    """The first line of ``text`` that starts with the key (``key=…``, ``key: …``, ``key is …``), house style."""
    lines = [line.strip().removeprefix("transferlab: error:").strip() for line in text.splitlines()]
    return next((line for line in lines if re.match(rf"{re.escape(path)}(?=[=: ])", line)), None)


def names_key(text: str, path: str) -> bool:
    """Whether a line of ``text`` starts with the key."""
    return naming_line(text, path) is not None


def problem(case: Case, command: str, outcome: Outcome, *, one_paragraph: bool = False) -> str | None:
    """What is wrong with how ``command`` ended on ``case`` (``None`` when it ended cleanly).

    Clean is: exit status 2, stderr that starts with ``transferlab: error:`` (one line, where ``one_paragraph``),
    no traceback, and a line that starts with the key's full path and gives a ``Fix:``.
    """
    text = outcome.stderr.strip()
    wrong = []
    if outcome.status != 2:
        wrong.append(f"exit {outcome.status!r}, not 2")
    if not text.startswith("transferlab: error:"):
        wrong.append("stderr does not start with 'transferlab: error:'")
    if "Traceback" in text:
        wrong.append("a traceback")
    if one_paragraph and len(text.splitlines()) != 1:
        wrong.append(f"{len(text.splitlines())} lines, not one paragraph")
    line = naming_line(text, case.key.path)
    if line is None:
        wrong.append(f"no line starts with {case.key.path}")
    elif "Fix:" not in line:
        wrong.append("the message gives no 'Fix:'")
    if not wrong:
        return None
    shown = " | ".join(text.splitlines()[-3:])[:400]
    return f"{command} {case}: {'; '.join(wrong)} — stderr: {shown}"
