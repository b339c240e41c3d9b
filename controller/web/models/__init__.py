"""Request and response bodies of the API, one module per domain.

Requests are strict and refuse unknown fields, so a typo is an error that
names the field rather than a setting silently ignored. Responses allow
extra keys, so a field the domain adds is never dropped on the way out.
"""

from pydantic import BaseModel, ConfigDict


class RequestBody(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)


class ResponseBody(BaseModel):
    model_config = ConfigDict(extra="allow")
