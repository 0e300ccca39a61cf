"""The dashboard's sections. Each fills in as its issue lands; until then the page says
what will appear there and what to do first."""
