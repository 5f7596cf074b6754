"""Typed records for the on-host runner: the part of :mod:`dataclasses` the agent uses, without its
start-up cost.

The runner starts on every host run. ``import dataclasses`` (which imports ``inspect``, ``ast``,
``dis``, ``tokenize`` ...) and the six methods it generates and compiles for each frozen class
cost ~18 ms of CPU of a healthy host's ~60 ms runner (measured in a lab host, Python 3.11: the
import 6 ms, the 21 classes a healthy run defines 11 ms). Here a class gets one generic
``__init__`` (and ``__repr__``, ``__eq__``, ``__hash__``, frozen ``__setattr__``) reading its
field table, so defining a record costs a loop over its annotations and compiles nothing.

What it keeps from dataclasses, with the same meaning: fields in annotation order, each with a
default, a ``default_factory`` or neither (then the argument is required, and may not follow one
with a default); ``field(repr=False)``, ``field(compare=False)``, ``field(metadata=...)``;
``frozen=True`` (assignment raises :class:`FrozenInstanceError`, ``==`` and ``hash`` over the
compared fields; a mutable record compares the same way and is unhashable); ``__post_init__``;
:func:`fields`, :func:`replace`, :func:`asdict`. Not kept: inheritance between records,
``ClassVar``/``InitVar``, ordering, slots (none is used by the agent). Type checkers see the
decorator as a dataclass transform (PEP 681), so mypy checks constructor calls and frozen
assignments as it does for dataclasses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Dict, Mapping, Optional, Tuple, Type, TypeVar, overload

if TYPE_CHECKING:
    from typing_extensions import dataclass_transform
else:

    def dataclass_transform(**kwargs: Any) -> Callable[[Any], Any]:
        return lambda decorated: decorated


_T = TypeVar("_T")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: A field without a default (or without a default factory).
MISSING: Any = _Missing()


class FrozenInstanceError(AttributeError):
    """An assignment to a field of a frozen record (as ``dataclasses.FrozenInstanceError``)."""


class Field:
    """One field of a record: its name, its default or default factory, and whether it is shown
    (``repr``), compared (``==``, ``hash``) and what ``metadata`` it carries."""

    __slots__ = ("compare", "default", "default_factory", "metadata", "name", "repr")

    def __init__(
        self,
        default: Any = MISSING,
        default_factory: Any = MISSING,
        repr: bool = True,
        compare: bool = True,
        metadata: Optional[Mapping[str, Any]] = None,
    ) -> None:
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = ""
        self.default = default
        self.default_factory = default_factory
        self.repr = repr
        self.compare = compare
        self.metadata: Mapping[str, Any] = dict(metadata or {})

    def __repr__(self) -> str:
        return f"Field(name={self.name!r}, default={self.default!r}, default_factory={self.default_factory!r})"


def field(
    *,
    default: Any = MISSING,
    default_factory: Any = MISSING,
    repr: bool = True,
    compare: bool = True,
    metadata: Optional[Mapping[str, Any]] = None,
) -> Any:
    """A field's options, as ``dataclasses.field`` takes them (the subset records support)."""
    return Field(default, default_factory, repr, compare, metadata)


@overload
def record(cls: Type[_T], /) -> Type[_T]: ...


@overload
def record(*, frozen: bool = False) -> Callable[[Type[_T]], Type[_T]]: ...


@dataclass_transform(field_specifiers=(field, Field))
def record(cls: Optional[Type[_T]] = None, /, *, frozen: bool = False) -> Any:
    """Make ``cls`` a record (``@record`` or ``@record(frozen=True)``), as ``@dataclass`` would."""

    def wrap(target: Type[_T]) -> Type[_T]:
        return _process(target, frozen)

    return wrap if cls is None else wrap(cls)


def _process(cls: Type[_T], frozen: bool) -> Type[_T]:
    klass: Any = cls  # methods are set on it below
    own = cls.__dict__
    table = []
    defaulted = ""
    for name in own.get("__annotations__", {}):
        value = own.get(name, MISSING)
        spec = value if isinstance(value, Field) else Field(default=value)
        spec.name = name
        if spec.default is MISSING:
            if name in own:
                delattr(cls, name)  # a field() without a default leaves no class attribute
            if spec.default_factory is MISSING and defaulted:
                raise TypeError(f"{cls.__name__}: non-default argument {name!r} follows default argument {defaulted!r}")
        else:
            setattr(cls, name, spec.default)
        if spec.default is not MISSING or spec.default_factory is not MISSING:
            defaulted = defaulted or name
        table.append(spec)
    specs = tuple(table)
    compared = tuple(f.name for f in specs if f.compare)
    shown = tuple(f.name for f in specs if f.repr)
    klass.__record_fields__ = specs
    klass.__init__ = _init(cls.__name__, specs)

    def __repr__(self: Any) -> str:
        inner = ", ".join(f"{name}={getattr(self, name)!r}" for name in shown)
        return f"{type(self).__qualname__}({inner})"

    def __eq__(self: Any, other: Any) -> Any:
        if other.__class__ is not self.__class__:
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in compared)

    if "__repr__" not in own:
        klass.__repr__ = __repr__
    if "__eq__" not in own:
        klass.__eq__ = __eq__
    if "__hash__" not in own:
        if frozen:

            def __hash__(self: Any) -> int:
                return hash(tuple(getattr(self, name) for name in compared))

            klass.__hash__ = __hash__
        else:
            klass.__hash__ = None  # mutable and compared by value: unhashable, as dataclasses
    if frozen:
        names = frozenset(f.name for f in specs)

        def __setattr__(self: Any, name: str, value: Any) -> None:
            if name in names or type(self) is cls:
                raise FrozenInstanceError(f"cannot assign to field {name!r}")
            object.__setattr__(self, name, value)

        def __delattr__(self: Any, name: str) -> None:
            if name in names or type(self) is cls:
                raise FrozenInstanceError(f"cannot delete field {name!r}")
            object.__delattr__(self, name)

        klass.__setattr__ = __setattr__
        klass.__delattr__ = __delattr__
    return cls


def _init(owner: str, specs: Tuple[Field, ...]) -> Callable[..., None]:
    names = frozenset(f.name for f in specs)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if len(args) > len(specs):
            raise TypeError(f"{owner}() takes {len(specs)} positional arguments but {len(args)} were given")
        put = object.__setattr__
        for index, spec in enumerate(specs):
            if index < len(args):
                if spec.name in kwargs:
                    raise TypeError(f"{owner}() got multiple values for argument {spec.name!r}")
                value = args[index]
            elif spec.name in kwargs:
                value = kwargs[spec.name]
            elif spec.default is not MISSING:
                value = spec.default
            elif spec.default_factory is not MISSING:
                value = spec.default_factory()
            else:
                raise TypeError(f"{owner}() missing required argument: {spec.name!r}")
            put(self, spec.name, value)
        for name in kwargs:
            if name not in names:
                raise TypeError(f"{owner}() got an unexpected keyword argument {name!r}")
        post = getattr(self, "__post_init__", None)
        if post is not None:
            post()

    return __init__


def is_record(obj: Any) -> bool:
    """Whether ``obj`` is a record class or a record instance."""
    return hasattr(obj, "__record_fields__")


def fields(obj: Any) -> Tuple[Field, ...]:
    """The fields of a record class or instance, in order."""
    try:
        specs: Tuple[Field, ...] = obj.__record_fields__
    except AttributeError:
        raise TypeError(f"{obj!r} is not a record") from None
    return specs


def replace(obj: _T, **changes: Any) -> _T:
    """A copy of the record ``obj`` with ``changes`` (through ``__init__``, so ``__post_init__``
    checks it again)."""
    values = {f.name: getattr(obj, f.name) for f in fields(obj)}
    unknown = sorted(set(changes) - set(values))
    if unknown:
        raise TypeError(f"{type(obj).__name__} has no field {unknown[0]!r}")
    values.update(changes)
    return type(obj)(**values)


def asdict(obj: Any) -> Dict[str, Any]:
    """The record as plain data, nested records, lists, tuples and dicts too, sharing nothing
    with ``obj`` (as ``dataclasses.asdict``)."""
    if not is_record(obj) or isinstance(obj, type):
        raise TypeError("asdict() should be called on record instances")
    result: Dict[str, Any] = _plain(obj)
    return result


def _plain(value: Any) -> Any:
    if is_record(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    import copy  # only where a record with other values is turned into data

    return copy.deepcopy(value)
