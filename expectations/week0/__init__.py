"""Week 0 gates, one module per plan day."""
