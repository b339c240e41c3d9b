"""Request and response bodies of the API, one module per domain.

Requests are strict and refuse unknown fields, so a typo is an error that
names the field rather than a setting silently ignored. Responses allow
extra keys, so a field the domain adds is never dropped on the way out.
"""

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from wire.messages import INT64_MAX, MessageError, check_depth


def _shallow(value: dict[str, Any]) -> dict[str, Any]:
    """Free-form JSON nests no deeper than a message may: what is stored is sent to
    devices and answered again."""
    try:
        check_depth(value, "the value")
    except MessageError as exc:
        raise ValueError(str(exc)) from None
    return value


#: A free-form JSON object (command arguments, a device's config, targets).
JsonObject = Annotated[dict[str, Any], AfterValidator(_shallow)]
#: A row's id: SQLite's integers are 64-bit.
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]


class RequestBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="allow")
