-- 011: the benchmark comparison report groups portfolios by benchmark.
CREATE INDEX IF NOT EXISTS idx_portfolios_benchmark_id ON portfolios (benchmark_id);
