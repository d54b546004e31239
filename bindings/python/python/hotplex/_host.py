"""Host functions the agent calls: hooks and tools (and the argument rule of
``can_use_tool``).

The engine calls them on its own threads through the same machinery as
``can_use_tool`` (bindings/python/src/host.rs): a plain function runs on an
engine thread, an ``async def`` on the host's event loop (see
``hotplex._permission.schedule``), each bounded by a timeout. This module
holds the Python-side objects (``HookMatcher``, ``HookContext``, ``Tool``,
``ToolServer``, the ``tool`` decorator) and turns the engine keywords
``hooks=`` and ``tools=`` into the core's wire form (``HookSpec`` and
``ToolServer`` of the contract) plus the table of functions the native
handlers look up.
"""

import dataclasses
import inspect
from typing import (
    Any,
    Awaitable,
    Callable,
    Dict,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    Union,
)

__all__ = [
    "HookContext",
    "HookMatcher",
    "HookCallback",
    "Tool",
    "ToolServer",
    "ToolFunction",
    "tool",
]

# What a hook returns: the hook's output object (``hookSpecificOutput``,
# ``continue``/``continue_``, ``stopReason``, ``decision``, ...) or None.
_HookOutput = Optional[Mapping[str, Any]]
_ToolAnswer = Union[str, Mapping[str, Any]]


@dataclasses.dataclass(frozen=True)
class HookContext:
    """What a host hook learns besides its input: the hotplex session id and
    the hook event (``"PreToolUse"``, ``"PostToolUse"``, ...)."""

    session_id: str
    event: str


#: A host hook: ``fn(input, tool_use_id, context)`` returning the hook's
#: output dict or None, or an awaitable of it (``async def``).
HookCallback = Callable[
    [Dict[str, Any], Optional[str], HookContext],
    Union[_HookOutput, Awaitable[_HookOutput]],
]

#: A host tool's function: ``fn(arguments)`` returning a str (one text
#: block), a dict (with ``content``: the MCP result itself; else sent as its
#: JSON text), or an awaitable of either (``async def``).
ToolFunction = Callable[[Dict[str, Any]], Union[_ToolAnswer, Awaitable[_ToolAnswer]]]


@dataclasses.dataclass(frozen=True)
class HookMatcher:
    """Host hooks for the tools ``matcher`` names, as an entry of the engine's
    ``hooks={event: [...]}``.

    matcher: a tool name or ``"A|B"`` alternatives (the agent matches it);
    None applies to every call (tool-less events ignore it). hooks: the
    functions, each called as ``fn(input, tool_use_id, context)``. timeout:
    seconds each may take (None: the core's default, 60); past it, or if
    it raises, a ``PreToolUse`` hook denies the call and the other events go
    on as if it returned nothing (the turn gets an ``error`` event).
    """

    matcher: Optional[str] = None
    hooks: Sequence[HookCallback] = ()
    timeout: Optional[float] = None


@dataclasses.dataclass(frozen=True)
class Tool:
    """A host-defined tool: a function of the host the model can call, served
    to the agent in-process as an MCP tool (the model sees it as
    ``mcp__<server>__<name>``). Made by the ``hotplex.tool`` decorator;
    calling it calls the function.
    """

    name: str
    description: str
    # The JSON Schema of its arguments (an object schema).
    input_schema: Dict[str, Any]
    handler: ToolFunction

    def __call__(self, arguments: Dict[str, Any]) -> Union[_ToolAnswer, Awaitable[_ToolAnswer]]:
        """Calls the tool's function with the arguments dict."""
        return self.handler(arguments)


@dataclasses.dataclass(frozen=True)
class ToolServer:
    """An in-process MCP server of host tools, for the engine's ``tools=``.

    name: the server's name (letters, digits, ``_`` and ``-``); the model
    sees its tools as ``mcp__<name>__<tool>``. version: what it reports
    (None: ``"1.0.0"``).
    """

    name: str
    tools: Sequence[Tool]
    version: Optional[str] = None


# Python types of the ``{"city": str}`` shorthand, as JSON Schema types.
_JSON_TYPES: Dict[type, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    list: "array",
    dict: "object",
}


def _schema(input_schema: Mapping[str, Any]) -> Dict[str, Any]:
    """A JSON Schema of the arguments: a shorthand ``{"city": str, "days":
    int}`` (every value a Python type: each argument required) becomes an
    object schema; anything else is taken as a JSON Schema."""
    if not isinstance(input_schema, Mapping):
        raise TypeError("input_schema must be a dict (a JSON Schema or {name: type})")
    if input_schema and all(isinstance(v, type) for v in input_schema.values()):
        properties = {}
        for name, kind in input_schema.items():
            if kind not in _JSON_TYPES:
                raise TypeError(
                    f"input_schema[{name!r}]: {kind.__name__} has no JSON Schema type "
                    "(use str, int, float, bool, list or dict, or give a JSON Schema)"
                )
            properties[name] = {"type": _JSON_TYPES[kind]}
        return {"type": "object", "properties": properties, "required": list(input_schema)}
    if not input_schema:
        return {"type": "object", "properties": {}}
    return dict(input_schema)


def tool(
    name: str, description: str, input_schema: Mapping[str, Any]
) -> Callable[[ToolFunction], Tool]:
    """Declares a host tool (a decorator)::

        @hotplex.tool("get_weather", "The weather in a city", {"city": str})
        def get_weather(args):
            return f"sunny in {args['city']}"

        engine = hotplex.Engine(tools=[get_weather])

    input_schema is a JSON Schema dict, or a shorthand of Python types
    (``{"city": str}``: str, int, float, bool, list, dict; every argument
    required). The function gets the arguments dict and returns a str or a
    dict, or is an ``async def``; an exception becomes an error result the
    model sees (its message), and the turn goes on.
    """
    schema = _schema(input_schema)

    def decorate(fn: ToolFunction) -> Tool:
        if not callable(fn):
            raise TypeError("hotplex.tool decorates a function")
        return Tool(name=name, description=description, input_schema=schema, handler=fn)

    return decorate


def _hook_specs(
    hooks: Mapping[str, Sequence[Union[HookCallback, HookMatcher]]],
) -> Tuple[List[Dict[str, Any]], Dict[str, HookCallback]]:
    """The engine keyword ``hooks`` as the core's HookSpec list (wire form)
    and the function of each spec's id (ids unique within the engine)."""
    if not isinstance(hooks, Mapping):
        raise TypeError("hooks must be a dict of event name -> list of functions or HookMatcher")
    specs: List[Dict[str, Any]] = []
    table: Dict[str, HookCallback] = {}
    for event, given in hooks.items():
        if not isinstance(event, str):
            raise TypeError(f"hooks: the event {event!r} is not a str")
        entries: List[Any] = [given] if _one(given) else list(given)
        for entry in entries:
            if isinstance(entry, HookMatcher):
                matcher, fns, timeout = entry.matcher, list(entry.hooks), entry.timeout
            elif callable(entry):
                matcher, fns, timeout = None, [entry], None
            else:
                raise TypeError(f"hooks[{event!r}]: {entry!r} is neither callable nor a HookMatcher")
            for fn in fns:
                if not callable(fn):
                    raise TypeError(f"hooks[{event!r}]: {fn!r} is not callable")
                hook_id = f"hook_{len(specs)}"
                spec: Dict[str, Any] = {"event": event, "matcher": matcher, "id": hook_id}
                if timeout is not None:
                    spec["timeout"] = float(timeout)
                specs.append(spec)
                table[hook_id] = fn
    return specs, table


def _one(entry: object) -> bool:
    """Whether a hooks entry is one function or matcher (not a list of them)."""
    return isinstance(entry, HookMatcher) or callable(entry)


def _tool_servers(
    tools: Sequence[Union[Tool, ToolServer]],
) -> Tuple[List[Dict[str, Any]], Dict[Tuple[str, str], ToolFunction]]:
    """The engine keyword ``tools`` as the core's ToolServer list (wire form)
    and the function of each (server, tool). A list of Tools is one server
    named ``"host"``."""
    if isinstance(tools, (Tool, ToolServer)) or not isinstance(tools, (list, tuple)):
        raise TypeError("tools must be a list of hotplex.ToolServer or of hotplex.Tool")
    if tools and all(isinstance(t, Tool) for t in tools):
        servers: List[ToolServer] = [ToolServer("host", list(tools))]
    elif all(isinstance(t, ToolServer) for t in tools):
        servers = list(tools)
    else:
        raise TypeError(
            "tools must be a list of hotplex.ToolServer or of hotplex.Tool (made with "
            "@hotplex.tool), not a mix"
        )
    wire: List[Dict[str, Any]] = []
    table: Dict[Tuple[str, str], ToolFunction] = {}
    for server in servers:
        specs = []
        for t in server.tools:
            if not isinstance(t, Tool):
                raise TypeError(f"ToolServer {server.name!r}: {t!r} is not a hotplex.Tool")
            specs.append(
                {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            )
            table[(server.name, t.name)] = t.handler
        entry: Dict[str, Any] = {"name": server.name, "tools": specs}
        if server.version is not None:
            entry["version"] = server.version
        wire.append(entry)
    return wire, table


def _wants_context(can_use_tool: Callable[..., Any]) -> bool:
    """Whether can_use_tool takes the permission context as a 4th positional
    argument: when its signature binds four positional arguments (older
    three-parameter callables get three)."""
    try:
        inspect.signature(can_use_tool).bind(None, None, None, None)
    except (TypeError, ValueError):
        return False
    return True


def _hook_context(session_id: str, event: str) -> HookContext:
    """Built by the extension for each hook call."""
    return HookContext(session_id=session_id, event=event)
