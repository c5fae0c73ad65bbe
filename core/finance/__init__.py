"""Finance: settlement batches, adjustments, CSV reports, async exports,
reconciliation and the dashboards. Services take a connection; the route or job
that calls them owns the transaction."""
