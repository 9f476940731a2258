"""Bulk import of the register from a school MIS, and of enrolment photos."""
