"""Generated MIS exports: valid UPNs (check letter from python-stdnum), three header
styles, consents on some pupils."""

from __future__ import annotations

import csv
import io

from stdnum.gb import upn as stdnum_upn

CHANNELS = ["website", "social_media", "newsletter", "press", "display"]
STYLES = {
    "sims": ["UPN", "Legal Surname", "Legal Forename", "Preferred Forename", "Year", "Reg"],
    "arbor": ["UPN", "Last Name", "First Name", "Year Group", "Registration Form"],
    "consentgate": ["upn", "given_name", "family_name", "year_group", "reg_group"],
}


def make_upn(i: int, la: int = 801) -> str:
    """A valid UPN: local authority `la`, school 2000, issued 2019, serial i (< 1000)."""
    body = f"{la:03d}2000{19 + i // 1000:02d}{i % 1000:03d}"
    return stdnum_upn.calc_check_digit(body) + body


def pupil(i: int) -> dict[str, str]:
    year = 1 + i % 6
    status = ["granted", "refused", "withdrawn", "", "granted"]
    return {
        "upn": make_upn(i), "given": f"Given{i}", "family": f"Family{i:04d}",
        "year": f"Year {year}", "reg": f"{year}{'AB'[i % 2]}",
        **{c: status[(i + k) % 5] for k, c in enumerate(CHANNELS)},
        "biometric": "granted" if i % 3 == 0 else "",
    }


def make_csv(style: str, indices: range | list[int], *, consents: bool = True,
             overrides: dict[int, dict[str, str]] | None = None) -> bytes:
    header = list(STYLES[style])
    if consents:
        header += ["Website", "Social Media", "newsletter", "press", "display", "biometric",
                   "given_by", "evidence_ref"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for i in indices:
        p = pupil(i)
        p.update((overrides or {}).get(i, {}))
        if style == "sims":
            row = [p["upn"], p["family"], f"Legal{i}", p["given"], p["year"], p["reg"]]
        elif style == "arbor":
            row = [p["upn"], p["family"], p["given"], p["year"], p["reg"]]
        else:
            row = [p["upn"], p["given"], p["family"], p["year"], p["reg"]]
        if consents:
            row += [p[c] for c in CHANNELS] + [p["biometric"], "guardian", f"form-{i}"]
        writer.writerow(row)
    return out.getvalue().encode()


def expected_consents(indices: range | list[int]) -> int:
    return sum(sum(1 for c in CHANNELS if pupil(i)[c]) + (1 if pupil(i)["biometric"] else 0)
               for i in indices)
