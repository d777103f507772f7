"""ecotrain: measure what training costs (energy, CO2e, dollars) and what reuse saves."""

__version__ = "0.1.0"
