"""The ``ecsspot`` click group: global options, logging, command registration, the error boundary.

Every command raises :class:`ecsspot.errors.EcsspotError` subclasses for failures it expects;
:class:`EcsspotGroup` turns them into one ``ecsspot: error: …`` line on stderr (a spec's
problems follow, one a line) and the error's ``exit_code``. Anything else is a bug: one line and
exit 1, the traceback only with ``-v``.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import textwrap
import traceback
from typing import TYPE_CHECKING, Any

import attrs
import click

from ecsspot.errors import EXIT_CODES, EcsspotError, SpecError
from ecsspot.settings import aws_region
from ecsspot_cli import retries
from ecsspot_cli.commands import (
    advise,
    demo,
    doctor,
    drain,
    fallback,
    guard,
    refresh,
    savings,
    sim,
    simulate,
    spec_commands,
    status,
    teardown,
    tf,
)
from ecsspot_cli.progress import Progress

if TYPE_CHECKING:
    from botocore.config import Config

    from ecsspot.manager import Manager

#: Modules whose ``COMMANDS`` list is registered on the group; add a module here to add commands.
COMMAND_MODULES = (spec_commands, status, drain, refresh, teardown, tf, demo, sim, simulate, guard, fallback, savings, doctor, advise)

PROG = "ecsspot"
log = logging.getLogger("ecsspot.cli")
EXIT_UNEXPECTED = 1
EXIT_INTERRUPTED = 130


@attrs.frozen
class Context:
    """The global options, on ``ctx.obj`` for every command."""

    region: str | None = None
    profile: str | None = None
    endpoint_url: str | None = None
    output: str = "text"
    #: -1 quiet, 0 default, 1 ``-v``, 2 ``-vv`` (botocore's own logs too).
    verbosity: int = 0
    #: Total attempts per AWS call (``--max-attempts``); None: AWS_MAX_ATTEMPTS, else the library's.
    max_attempts: int | None = None
    #: Connect and read timeout in seconds (``--timeout``); None: the library's.
    timeout: float | None = None

    #: JMESPath expression applied to the output document (``--query``), compiled at parse time.
    query: str | None = None
    #: Renders the library's progress reports on stderr (see :mod:`ecsspot_cli.progress`).
    progress: Progress = attrs.field(factory=Progress, eq=False)

    @property
    def json(self) -> bool:
        """A document goes to stdout (``--output json`` or ``yaml``), everything else to stderr."""
        return self.output in ("json", "yaml")

    def manager(self, spec_region: str | None = None, *, say_retries: bool = True) -> Manager:
        """A Manager for these options; ``--region`` wins over the spec's ``region``.

        ``say_retries=False`` keeps retries and progress off stderr (``tf`` hooks: one line on
        error, none on success).
        """
        from ecsspot.manager import Manager

        # botocore itself reads only AWS_DEFAULT_REGION; AWS_REGION is what the AWS CLI v2, the
        # other SDKs and Lambda set, and what DESIGN.md promises.
        region = self.region or spec_region or aws_region(os.environ)
        log.debug("AWS region %s, profile %s, endpoint %s", region or "(boto3 default)", self.profile or "(default)", self.endpoint_url or "(default)")
        handlers = list(retries.EVENT_HANDLERS) if say_retries else []  # a warning: -q hides it
        if self.verbosity > 0:
            handlers.append(("before-call", _log_call))
        return Manager(
            region=region,
            profile=self.profile,
            endpoint_url=self.endpoint_url,
            config=self.client_config(),
            event_handlers=handlers,
            on_progress=self.progress if say_retries else None,
        )

    def client_config(self) -> Config:
        """The botocore Config of this CLI run (see :mod:`ecsspot_cli.retries`)."""
        return retries.client_config(self.max_attempts, self.timeout)


def _log_call(model: Any, params: Any, **_: Any) -> None:
    log.debug("call %s:%s %s", model.service_model.service_name, model.name, params.get("url", ""))


class _ClickStderrHandler(logging.Handler):
    """Writes to whatever stderr click sees now (CliRunner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=True)
        except Exception:  # noqa: BLE001 - logging must never take the command down
            self.handleError(record)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"{PROG}: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return redact(text)


# botocore's DEBUG logs (-vv) carry the signed request: the session token in the canonical
# request and in the headers, the Authorization header, signatures; STS answers carry keys.
_SECRETS = [
    (re.compile(r"(?i)(x-amz-security-token['\"]?\s*[:=]\s*b?['\"]?)[^'\"\s&,;]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(['\"]authorization['\"]\s*:\s*b?)(['\"]).*?\2"), r"\1\2<redacted>\2"),
    (re.compile(r"(?im)^(authorization\s*:\s*).*$"), r"\1<redacted>"),
    (re.compile(r"(?i)(x-amz-credential=|x-amz-signature=)[^&\s'\"]+"), r"\1<redacted>"),
    (re.compile(r"(?i)(signature\s*[=:]\s*)[0-9a-f]{64}"), r"\1<redacted>"),
    (re.compile(r"(?i)(<(SecretAccessKey|SessionToken|Token|Password)>)[^<]*"), r"\1<redacted>"),
    (re.compile(r"(?i)(['\"](?:SecretAccessKey|SessionToken|secret_access_key|session_token|aws_secret_access_key|password)['\"]\s*:\s*['\"])[^'\"]*"), r"\1<redacted>"),
    (re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Z0-9])"), "<redacted-access-key-id>"),
]


def redact(text: str) -> str:
    """``text`` with credentials, session tokens, Authorization headers and signatures masked."""
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


_handler: logging.Handler | None = None


def configure_logging(verbosity: int) -> None:
    """The library never configures logging; the CLI sends ``ecsspot`` logs to stderr."""
    global _handler
    level = {-1: logging.ERROR, 0: logging.WARNING}.get(verbosity, logging.DEBUG)
    loggers = [logging.getLogger("ecsspot")]
    if verbosity >= 2:
        loggers += [logging.getLogger("botocore"), logging.getLogger("boto3")]
    if _handler is None:
        _handler = _ClickStderrHandler()
        _handler.setFormatter(_Formatter())
    for name in ("ecsspot", "botocore", "boto3"):
        logger = logging.getLogger(name)
        if _handler in logger.handlers and logger not in loggers:
            logger.removeHandler(_handler)
    for logger in loggers:
        logger.setLevel(level)
        if _handler not in logger.handlers:
            logger.addHandler(_handler)


def error_lines(err: EcsspotError) -> list[str]:
    """The stderr lines for an expected error: one summary line, then a spec's problems."""
    if isinstance(err, SpecError) and len(err.problems) == 1 and not err.problems[0].path:
        # A problem with the whole input (unreadable, not YAML, too large): one line says it.
        where = f" in {err.source}" if err.source else ""
        return [f"{PROG}: error: invalid spec{where}: {_one_line(err.problems[0].message)}"]
    if isinstance(err, SpecError) and err.problems:
        n = len(err.problems)
        where = f" in {err.source}" if err.source else ""
        return [f"{PROG}: error: invalid spec{where} ({n} problem{'s' if n != 1 else ''}):"] + [f"  {p}" for p in err.problems]
    return [f"{PROG}: error: {_one_line(str(err) or type(err).__name__)}"]


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _check_query(value: str | None) -> str | None:
    """A JMESPath expression that compiles, or a usage error naming the option."""
    if value is None:
        return None
    import jmespath
    from jmespath.exceptions import JMESPathError

    if len(value) > 2000:
        raise click.BadParameter("at most 2000 characters", param_hint="'--query'")
    try:
        jmespath.compile(value)
    except JMESPathError as err:
        raise click.BadParameter(_one_line(str(err)), param_hint="'--query'") from None
    return value


def hoist_global_options(args: list[str], group: click.Group) -> list[str]:
    """Global options given after the subcommand, moved before it, as awscli accepts them
    anywhere (``ecsspot demo --output json`` is ``ecsspot --output json demo``).

    Only the group's own options move (no subcommand has one of the same name; a test keeps it
    so), with their value; ``--help``/``--version`` stay with the subcommand, and nothing after
    ``--`` moves.
    """
    takes_value: dict[str, bool] = {}
    for param in group.params:
        if isinstance(param, click.Option) and not param.hidden and "--version" not in param.opts:
            for opt in (*param.opts, *param.secondary_opts):
                takes_value[opt] = not (param.is_flag or param.count)
    # Where the subcommand is: the first word that is not a global option or its value.
    i = 0
    while i < len(args) and args[i] != "--" and args[i] not in group.commands:
        name = args[i].split("=", 1)[0]
        i += 2 if takes_value.get(name) and "=" not in args[i] else 1
    if i >= len(args) or args[i] == "--":
        return args
    head, command, rest = args[:i], args[i], args[i + 1 :]
    moved: list[str] = []
    kept: list[str] = []
    j = 0
    while j < len(rest):
        word = rest[j]
        if word == "--":
            kept += rest[j:]
            break
        name = word.split("=", 1)[0]
        if name in takes_value:
            if takes_value[name] and "=" not in word and j + 1 < len(rest):
                moved += rest[j : j + 2]
                j += 2
                continue
            moved.append(word)
        elif re.fullmatch(r"-v+", word) or (len(word) > 2 and word[:2] == "-o" and word[2] != "-"):
            moved.append(word)  # -vv; -ojson
        else:
            kept.append(word)
        j += 1
    return [*head, *moved, command, *kept]


class EcsspotGroup(click.Group):
    """A click group with the CLI's single error boundary around every command, and global
    options accepted after the subcommand too (:func:`hoist_global_options`)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(list(args), self))

    def invoke(self, ctx: click.Context) -> Any:
        try:
            try:
                return super().invoke(ctx)
            finally:
                # The live progress line goes before the result or the error is printed.
                if isinstance(ctx.obj, Context):
                    ctx.obj.progress.close()
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except EcsspotError as err:
            for line in error_lines(err):
                click.echo(line, err=True)
            sys.exit(err.exit_code)
        except KeyboardInterrupt:
            click.echo(f"{PROG}: error: interrupted", err=True)
            sys.exit(EXIT_INTERRUPTED)
        except OSError as err:
            if err.errno == errno.EPIPE:
                raise  # click's main quiets a closed pipe (`ecsspot status x | head`)
            self._unexpected(ctx, err)
        except Exception as err:  # noqa: BLE001 - the boundary: everything unexpected ends here
            self._unexpected(ctx, err)

    @staticmethod
    def _unexpected(ctx: click.Context, err: BaseException) -> None:
        verbose = _verbosity(ctx) > 0
        if verbose:
            click.echo("".join(traceback.format_exception(err)).rstrip(), err=True)
        hint = "" if verbose else " (run with -v for the traceback)"
        click.echo(f"{PROG}: error: unexpected {type(err).__name__}: {_one_line(str(err))}{hint}", err=True)
        sys.exit(EXIT_UNEXPECTED)


def _verbosity(ctx: click.Context) -> int:
    if isinstance(ctx.obj, Context):
        return ctx.obj.verbosity
    return int(ctx.params.get("verbose") or 0)


def _epilog() -> str:
    """The exit-code table of ``ecsspot.errors.EXIT_CODES``, wrapped for --help."""
    lines = ["\b", "Exit codes:"]
    for code, meaning in EXIT_CODES:
        wrapped = textwrap.wrap(meaning, width=90, break_on_hyphens=False)  # keep --detailed-exitcode whole
        lines.append(f"  {code:<3} {wrapped[0]}")
        lines += [f"      {more}" for more in wrapped[1:]]
    return "\n".join(lines) + "\n"


EPILOG = _epilog()


@click.group(cls=EcsspotGroup, context_settings={"help_option_names": ["-h", "--help"]}, epilog=EPILOG)
@click.option("--region", metavar="R", help="AWS region (default: the spec's region, then AWS_REGION / the profile chain).")
@click.option("--profile", metavar="P", help="AWS named profile.")
@click.option(
    "--endpoint-url",
    metavar="URL",
    help="Send every AWS call to this endpoint (moto, LocalStack). AWS_ENDPOINT_URL works too.",
)
@click.option(
    "--output",
    "-o",
    type=click.Choice(["text", "json", "yaml"]),
    default="text",
    show_default=True,
    help="json, yaml: stdout is exactly one document; logs go to stderr.",
)
@click.option(
    "--query",
    metavar="JMESPATH",
    callback=lambda ctx, param, value: _check_query(value),
    help="Print only what this JMESPath expression selects of the document (as awscli's --query; needs --output json or yaml).",
)
@click.option(
    "--max-attempts",
    type=click.IntRange(min=1),
    metavar="N",
    help="Attempts per AWS call, the first included (default: AWS_MAX_ATTEMPTS, else ecsspot's). Each retry is reported on stderr.",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    metavar="SECONDS",
    help="Connect timeout, and read timeout, of each AWS attempt (default: ecsspot's).",
)
@click.option("-v", "--verbose", count=True, help="Debug logs; tracebacks of unexpected errors (-vv: botocore too).")
@click.option("-q", "--quiet", is_flag=True, help="Only errors on stderr.")
@click.version_option(package_name="ecsspot", prog_name=PROG)
@click.pass_context
def cli(
    ctx: click.Context,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    output: str,
    query: str | None,
    max_attempts: int | None,
    timeout: float | None,
    verbose: int,
    quiet: bool,
) -> None:
    """Run Amazon ECS clusters on spot capacity without dropping requests."""
    if verbose and quiet:
        raise click.UsageError("-v and -q cannot be used together")
    if query and output == "text":
        raise click.UsageError("--query selects from a document: use it with --output json or --output yaml")
    verbosity = -1 if quiet else verbose
    configure_logging(verbosity)
    ctx.obj = Context(
        region=region,
        profile=profile,
        endpoint_url=endpoint_url or None,
        output=output,
        query=query,
        verbosity=verbosity,
        max_attempts=max_attempts,
        timeout=timeout,
        progress=Progress(quiet=quiet),
    )


for _module in COMMAND_MODULES:
    for _command in _module.COMMANDS:
        cli.add_command(_command)


def main() -> None:
    """Console script entry point."""
    cli(prog_name=PROG)


if __name__ == "__main__":
    main()
