"""The setup checklist: each step of OneLogin's Workato SCIM walkthrough, verified live
where an API can tell, confirmed by an admin where none can."""
