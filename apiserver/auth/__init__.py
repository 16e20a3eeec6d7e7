"""Authentication, authorization and the admission that depends on who is asking."""
