"""The consent register: pupils, biometric consent, publication consent, enrolment."""
