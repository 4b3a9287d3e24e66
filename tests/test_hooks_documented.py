"""Every hook is typed, documented with an example plugin that really runs through
the PluginHost facade, and described in the plugin guide."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from seqopt_core import hookspecs

REPO = Path(__file__).resolve().parents[1]
HOOKS = [n for n in dir(hookspecs) if n.startswith("seqopt_")]
ALL_HOOKS = hookspecs.REGISTRY_HOOKS + hookspecs.COMMAND_HOOKS + hookspecs.LIFECYCLE_HOOKS


def test_hook_lists_are_complete():
    assert sorted(HOOKS) == sorted(ALL_HOOKS)


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hook_is_typed_and_has_an_example(name):
    fn = getattr(hookspecs, name)
    sig = inspect.signature(fn)
    assert sig.return_annotation is not inspect.Signature.empty
    assert all(p.annotation is not inspect.Parameter.empty for p in sig.parameters.values())
    doc = inspect.getdoc(fn) or ""
    assert "Called" in doc, f"{name}: the docstring says when it is called"
    assert "Example plugin::" in doc, f"{name}: the docstring carries an example plugin"
    example = doc.split("Example plugin::", 1)[1]
    source = inspect.cleandoc(example)
    tree = ast.parse(source)  # the example is valid Python
    defined = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
    assert name in defined, f"{name}: the example implements the hook"


def _sample_plan():
    from seqopt_core import Segment, SegmentPlan

    seg = Segment(0, "Hello there.", 0, 12, 9, "end")
    return SegmentPlan((seg,), "regex", "chatterbox", 96, 128, 12)


def _fire_lifecycle_hook(host, name):
    """Call one lifecycle hook through the PluginHost facade with a sample event."""
    from seqopt_core import ChunkEvent, GenerationEvent, SegmentEvent

    plan = _sample_plan()
    if name == "seqopt_segment_planned":
        host.segment_planned(plan)
    elif name == "seqopt_chunk_emitted":
        host.chunk_emitted(ChunkEvent(0, 0, 10, 0.4, 0.3, 0.35, is_first_audio=True))
    elif name == "seqopt_segment_finished":
        host.segment_finished(SegmentEvent(plan.segments[0], 2, 30, 1.2, 0.6))
    elif name == "seqopt_generation_finished":
        host.generation_finished(GenerationEvent(plan, 1, 2, 1.2, 0.6, 0.35))
    else:  # pragma: no cover - the list above is complete
        raise AssertionError(name)


def _check_command_hook(host, make_seqopt_host, module):
    """The example adds a command to a root group through the facade, and it runs."""
    import click
    from click.testing import CliRunner

    def commands(some_host):
        group = click.Group("seqopt")
        some_host.register_commands(group)
        return group

    before = set(commands(make_seqopt_host()).commands)
    group = commands(host)
    added = set(group.commands) - before
    assert len(added) == 1, added
    assert all(i.status != "error" for i in host.plugin_infos()), host.plugin_infos()
    command = group.commands[added.pop()]
    args = ["world" for p in command.params if isinstance(p, click.Argument)]
    result = CliRunner().invoke(group, [command.name, *args], catch_exceptions=False)
    assert result.exit_code == 0 and result.output.strip(), result.output


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hook_example_plugin_works(name, make_seqopt_host, capsys, tmp_path, monkeypatch):
    """Run each docstring example as a real plugin on a fresh host, through the facade."""
    import types

    from seqopt_core.strategies import SLOTS

    monkeypatch.chdir(tmp_path)
    doc = inspect.getdoc(getattr(hookspecs, name))
    source = inspect.cleandoc(doc.split("Example plugin::", 1)[1])
    module = types.ModuleType(f"example_{name}")
    exec(compile(source, f"<example {name}>", "exec"), module.__dict__)
    host = make_seqopt_host(module)
    if name in hookspecs.REGISTRY_HOOKS:
        slot = next(s for s in SLOTS.values() if s.hook == name)
        mine = [s for s in host.strategies(slot.key) if s.provider == module.__name__]
        assert len(mine) == 1
        info = mine[0]
        if info.enabled:
            assert isinstance(host.create(slot.key, info.name), slot.protocol)
        else:  # the attention example needs torch; then it must say how to install it
            assert info.availability.install
    elif name in hookspecs.COMMAND_HOOKS:
        _check_command_hook(host, make_seqopt_host, module)
    else:
        _fire_lifecycle_hook(host, name)
        out = capsys.readouterr().out
        assert out.strip() or (tmp_path / "runs.jsonl").is_file()


@pytest.mark.parametrize("name", ALL_HOOKS)
def test_hook_is_documented_in_the_plugin_guide(name):
    guide = (REPO / "docs" / "plugin-guide.md").read_text(encoding="utf-8")
    assert f"`{name}`" in guide or f"`{name}(" in guide
