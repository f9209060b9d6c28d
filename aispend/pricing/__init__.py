"""Model prices: a bundled snapshot derived from LiteLLM, the lookup rules, and costs."""
