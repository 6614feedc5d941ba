"""Week 1 gates, one module per plan day."""
