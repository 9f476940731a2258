"""Request text checked by `services.core.validate`, for bodies, forms and queries.

Starlette decodes a multipart field that is not valid UTF-8 as Latin-1 instead of
refusing it, so invalid bytes would be stored as garbled text. `StrictFormRoute`
parses multipart bodies with a parser that records such fields, and refuses the
request with InvalidText naming the field before the endpoint runs.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response, params
from fastapi.routing import APIRoute
from pydantic import AfterValidator, ValidationInfo
from python_multipart.multipart import parse_options_header
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException, MultiPartParser

from services.core import validate


def text_check(max_length: int, field: str | None = None) -> AfterValidator:
    """A pydantic validator running `validate.text`. The field is named from the model
    (or `field`, for a form or query parameter, which pydantic does not name)."""

    def check(value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        return validate.text(value, field=field or info.field_name or "value",
                             max_length=max_length)

    return AfterValidator(check)


class _StrictMultiPartParser(MultiPartParser):
    """Remembers the fields whose bytes are not valid in the request's charset."""

    undecodable: list[str]

    def on_part_end(self) -> None:
        part = self._current_part
        if part.file is None:
            try:
                bytes(part.data).decode(self._charset or "utf-8")
            except (UnicodeDecodeError, LookupError):
                self.undecodable.append(part.field_name)
        super().on_part_end()


async def _strict_form(request: Request) -> FormData:
    parser = _StrictMultiPartParser(request.headers, request.stream())
    parser.undecodable = []
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise HTTPException(status_code=400, detail=exc.message) from exc
    if parser.undecodable:
        await form.close()
        field = parser.undecodable[0]
        raise validate.InvalidText(f"{field} is not valid UTF-8 text", field=field)
    return form


class StrictFormRoute(APIRoute):
    """An APIRoute whose multipart form fields must be valid text."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        # Only endpoints that take a form; the others read their body as before.
        takes_form = self.body_field is not None and isinstance(
            self.body_field.field_info, params.Form)

        async def strict(request: Request) -> Response:
            content_type, _ = parse_options_header(request.headers.get("content-type", ""))
            if takes_form and content_type == b"multipart/form-data":
                # Starlette's Request caches the parsed form here; the endpoint's own
                # request.form() then returns it instead of parsing again.
                request._form = await _strict_form(request)
            return await handler(request)

        return strict
