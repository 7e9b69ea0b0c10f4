"""Scoring on identical origins: the backtest and its candidates, metrics, intervals, ensembles, probabilistic scores, data units, importance."""
