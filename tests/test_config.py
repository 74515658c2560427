"""The configuration mechanism (cli_config): flags from dataclasses, --config files under the flags, checks
before any work, and a config.toml record that reproduces the run."""
from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field

import pytest

import cli_config
from cli_config import at_least, opt, positive
from safe_output import UserError


class ToyError(UserError):
    pass


@dataclass
class Inner:
    rate: float = opt(0.5, "a rate", check=positive())
    names: list[str] = opt(["a"], "some names")
    extra: dict | None = opt(None, "free-form arguments", flags=False)
    limit: int | None = opt(3, "a bound; false in a file: none")


@dataclass
class Toy:
    output: str = opt("", "where", required=True)
    steps: int = opt(10, "how many", check=at_least(1))
    mode: str = opt("a", "which", choices=("a", "b"))
    fast: bool = opt(False, "go fast")
    inner: Inner = field(default_factory=Inner)

    def validate(self):
        if self.fast and self.steps > 100:
            raise ValueError("--fast allows at most 100 --steps")


def parse(argv, base=None):
    parser = cli_config.new_parser("toy")
    cli_config.add_arguments(parser, Toy)
    return cli_config.resolve(Toy, parser.parse_args(argv), ToyError, base=base)


def test_flags_override_the_file_which_overrides_the_defaults(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('output = "from-file"\nsteps = 20\n[inner]\nrate = 2\nnames = ["x", "y"]\nlimit = false\n'
                    '[inner.extra]\nk = 1\n')
    cfg = parse(["--config", str(path), "--steps", "30", "--fast"])
    assert (cfg.output, cfg.steps, cfg.fast, cfg.mode) == ("from-file", 30, True, "a")
    assert cfg.inner == Inner(rate=2.0, names=["x", "y"], extra={"k": 1}, limit=None)
    assert isinstance(cfg.inner.rate, float)
    assert parse(["--config", str(path), "--no-fast"]).fast is False


def test_yaml_and_json_files_read_the_same(tmp_path):
    (tmp_path / "a.yaml").write_text("output: o\ninner:\n  rate: 0.25\n  limit: null\n")
    (tmp_path / "a.json").write_text('{"output": "o", "inner": {"rate": 0.25, "limit": null}}')
    assert parse(["--config", str(tmp_path / "a.yaml")]) == parse(["--config", str(tmp_path / "a.json")])


def test_the_record_reproduces_the_settings(tmp_path):
    cfg = parse(["--output", "o", "--steps", "7", "--mode", "b", "--names", "p", "q r", "--limit", "9"])
    cfg.inner.extra = {"weights": [0.5, 1], "name": 'quote " and \\ back', "sub": {"x": True}}
    cli_config.write_record(cfg, tmp_path, "toy")
    again = parse(["--config", str(tmp_path / cli_config.RECORD)])
    assert again == cfg
    off = parse(["--output", "o"])
    off.inner.limit = None
    cli_config.write_record(off, tmp_path, "toy")
    assert parse(["--config", str(tmp_path / cli_config.RECORD)]) == off


@pytest.mark.parametrize("argv, message", [
    ([], "--output is required"),
    (["--output", "o", "--steps", "0"], "--steps: must be >= 1 (got 0)"),
    (["--output", "o", "--rate", "-1"], "--rate: must be > 0"),
    (["--output", "o", "--rate", "nan"], "--rate: must be a finite number"),
    (["--output", "o", "--fast", "--steps", "101"], "--fast allows at most 100 --steps"),
])
def test_a_bad_value_is_the_packages_one_error(argv, message):
    with pytest.raises(ToyError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(argv)


@pytest.mark.parametrize("text, message", [
    ('output = "o"\nstep = 1\n', "unknown setting step"),
    ('output = "o"\nsteps = "ten"\n', 'steps = "ten": expected int'),
    ('output = "o"\nmode = "c"\n', "--mode c: choose one of a, b"),
    ('output = "o"\n[inner]\nrate = false\n', "inner.rate = false: expected float"),
    ('output = "o"\n[inner]\nbogus = 1\n', "unknown setting inner.bogus"),
    ('output = \n', "not valid TOML"),
])
def test_a_bad_file_names_the_setting(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ToyError, match=message):
        parse(["--config", str(path)])


def test_base_layer_sits_under_the_file_and_flags(tmp_path):
    (tmp_path / "f.toml").write_text("steps = 5\n")
    cfg = parse(["--config", str(tmp_path / "f.toml"), "--output", "o"], base={"steps": 2, "mode": "b"})
    assert (cfg.steps, cfg.mode) == (5, "b")


def test_argparse_mistakes_are_one_line(capsys):
    with pytest.raises(SystemExit) as e:
        parse(["--steps", "ten"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--steps: invalid int value: 'ten'" in err


def test_help_shows_every_default():
    parser = cli_config.new_parser("toy")
    cli_config.add_arguments(parser, Toy)
    text = parser.format_help()
    for piece in ("how many (default: 10)", "a rate (default: 0.5)", "go fast (default: off)", "(required: a flag"):
        assert piece in " ".join(text.split())
    assert "--extra" not in text  # a free-form group: files and overrides only
    assert isinstance(parser, argparse.ArgumentParser) and dataclasses.is_dataclass(Toy)
