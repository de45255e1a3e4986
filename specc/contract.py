"""What the published JSON contracts share: the explain JSON, the metrics file, checkpoints.

Other programs read these documents, so each is a pydantic model that both
writes and checks it, and they all follow the same rules, kept here once:

* unknown keys are refused: a typo or a foreign file fails loudly instead of
  being dropped without a word;
* values are not coerced (strict): "7" is not a step count, true is not 1;
* a key that may be left out is *absent* when it has no value, never `null`,
  as the documents were written before they had models. Such a field is
  declared `Omittable[T] = None`; the JSON Schema then lists it as an
  optional property of type T (no null, no default).

The models serialise with :meth:`Contract.document`; `specc.schemas` publishes
their JSON Schema in `docs/schemas/`.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    SerializerFunctionWrapHandler,
    model_serializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

T = TypeVar("T")


class _LeftOutWhenNone:
    """Marks a field whose key is left out of the JSON when its value is None.

    In the JSON Schema such a field is just its type: None never reaches the JSON."""

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        out = handler(schema)
        branches = [s for s in out.get("anyOf", []) if s != {"type": "null"}]
        if len(branches) == 1:
            out = {**{k: v for k, v in out.items() if k != "anyOf"}, **branches[0]}
        return out

    def __repr__(self) -> str:
        return "LeftOutWhenNone"


LEFT_OUT_WHEN_NONE = _LeftOutWhenNone()


def _no_default(schema: dict[str, Any]) -> None:
    # The Python default None stands for "absent"; it is not a value the JSON may hold.
    schema.pop("default", None)


#: A key that may be missing from the document (None in Python, absent in JSON). A plain
#: `T | None` underneath, so validation errors name the key without a union branch.
Omittable = Annotated[T | None, Field(json_schema_extra=_no_default), LEFT_OUT_WHEN_NONE]


class Contract(BaseModel):
    """Base of every published document model (see the module docstring for the rules)."""

    # ser_json_inf_nan: a NaN metric is written as NaN, as json.dumps always wrote it.
    model_config = ConfigDict(
        extra="forbid", strict=True, populate_by_name=True, ser_json_inf_nan="constants"
    )

    @model_serializer(mode="wrap")
    def _leave_out_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        out = handler(self)
        for name, field in type(self).model_fields.items():
            if getattr(self, name) is None and LEFT_OUT_WHEN_NONE in field.metadata:
                out.pop(field.alias or name, None)
                out.pop(name, None)
        return out

    def document(self) -> dict[str, Any]:
        """The JSON document as plain data (keys by their published names), ready to dump."""
        return self.model_dump(mode="json", by_alias=True)
