"""REST handlers under /services/workbench/api/v1/, one module per resource."""
