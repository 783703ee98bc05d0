"""KPIs of ISO 22400-2 (availability, effectiveness, quality ratio, OEE...) over work unit
state histories and the shift calendars the MES holds."""
