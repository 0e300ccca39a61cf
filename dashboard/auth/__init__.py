"""SAML single sign-on, sessions, and who may do what."""
