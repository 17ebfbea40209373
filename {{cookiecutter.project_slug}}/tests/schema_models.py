"""Pydantic models for the structured-output tests: what is enforced, and what is refused.

Strings and lists are bounded where a random model would otherwise ramble past the token
budget; the bounds are themselves features under test.
"""

from __future__ import annotations

import datetime
import uuid
from enum import Enum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, RootModel

Word = Annotated[str, Field(max_length=8)]


class Color(Enum):
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Address(BaseModel):
    city: Word
    zip_code: str = Field(pattern=r"^[0-9]{5}$")


class Person(BaseModel):
    """Nested models, an enum, a list, optional fields and numeric bounds together."""

    name: str = Field(min_length=1, max_length=12)
    age: int = Field(ge=0, le=130)
    height: float = Field(gt=0.5, lt=2.5)
    favourite: Color
    address: Address
    nicknames: list[Word] = Field(max_length=3)
    nickname: Word | None = None
    manager: Address | None = None


class Enums(BaseModel):
    color: Color
    level: Literal["low", "high"]
    code: Literal[1, 2, 3]
    flag: Literal[True]


class Lists(BaseModel):
    numbers: list[int] = Field(min_length=2, max_length=4)
    matrix: list[list[bool]] = Field(max_length=2)
    pair: tuple[int, Color]
    colors: list[Color] = Field(min_length=1, max_length=2)


class Optionals(BaseModel):
    required_nullable: Word | None
    maybe_number: int | None = None
    maybe_nested: Address | None = None
    with_default: Word = "x"


class Numbers(BaseModel):
    small: int = Field(ge=3, le=17)
    negative: int = Field(gt=-50, lt=-3)
    at_least: int = Field(ge=1000)
    ratio: float = Field(ge=0, le=1)
    open_interval: float = Field(gt=-1.5, lt=-0.25)
    positive: float = Field(gt=0)
    fives: int = Field(multiple_of=5)


class Strings(BaseModel):
    exact: str = Field(min_length=4, max_length=4)
    short: str = Field(max_length=3)
    code: str = Field(pattern=r"^[A-Z]{2,3}-[0-9]+$")
    word: str = Field(pattern=r"^\w{1,6}$")
    identifier: uuid.UUID


class Cat(BaseModel):
    kind: Literal["cat"]
    lives: int = Field(ge=0, le=9)


class Dog(BaseModel):
    kind: Literal["dog"]
    good: bool


class Unions(BaseModel):
    pet: Cat | Dog = Field(discriminator="kind")
    number_or_word: int | Word
    scores: dict[Word, int] = Field(max_length=3)


class Node(BaseModel):
    value: int = Field(ge=0, le=99)
    children: list[Node] = Field(default_factory=list, max_length=2)


class Anything(BaseModel):
    value: Any
    mapping: dict[str, Any] = Field(max_length=2)


Numbers_List = RootModel[list[int]]

SUPPORTED: dict[str, type[BaseModel]] = {
    "nested": Person,
    "enums": Enums,
    "lists": Lists,
    "optionals": Optionals,
    "numbers": Numbers,
    "strings": Strings,
    "unions": Unions,
    "recursive": Node,
    "any": Anything,
    "root_list": Numbers_List,
}
"""Models whose every grammar match must validate."""


class UniqueItems(BaseModel):
    tags: set[int]


class DecimalStep(BaseModel):
    price: float = Field(multiple_of=0.5)


class BoundedStep(BaseModel):
    count: int = Field(ge=0, multiple_of=5)


class Dates(BaseModel):
    day: datetime.date


class Email(BaseModel):
    address: str = Field(json_schema_extra={"format": "email"})


class DotPattern(BaseModel):
    text: str = Field(pattern=r"^.+$")


class PatternAndLength(BaseModel):
    text: str = Field(pattern=r"^[a-z]+$", max_length=5)


class Lookahead(BaseModel):
    code: str = Field(json_schema_extra={"pattern": "^(?!0)[0-9]+$"})


class Negation(BaseModel):
    value: int = Field(json_schema_extra={"not": {"const": 3}})


class TooPrecise(BaseModel):
    tiny: float = Field(gt=0, lt=1e-9)


UNSUPPORTED: dict[str, tuple[type[BaseModel], str]] = {
    "uniqueItems": (UniqueItems, "$.properties.tags: 'uniqueItems'"),
    "number multipleOf": (
        DecimalStep,
        "$.properties.price: 'multipleOf' must be a positive integer",
    ),
    "multipleOf with bounds": (BoundedStep, "$.properties.count: 'multipleOf' next to bounds"),
    "format date": (Dates, "$.properties.day: format 'date'"),
    "format email": (Email, "$.properties.address: format 'email'"),
    "pattern with dot": (DotPattern, "$.properties.text: pattern '^.+$' uses '.'"),
    "pattern with length": (PatternAndLength, "$.properties.text: 'pattern' next to"),
    "pattern with lookahead": (
        Lookahead,
        "$.properties.code: pattern '^(?!0)[0-9]+$' uses a negative lookaround",
    ),
    "not": (Negation, "$.properties.value: 'not' is not enforced"),
    "unreachable precision": (TooPrecise, "$.properties.tiny: no number with at most 6 decimals"),
}
"""Models with a feature the grammar only approximates (the answer is checked instead), and
what the old whitelist said of it."""
