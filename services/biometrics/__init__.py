"""Biometric data of children: the template codec, the gallery and its version,
enrolment and erasure. Templates exist only while biometric consent stands."""
