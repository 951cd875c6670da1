"""The dashboard's messages, one catalogue per area of its pages; :mod:`stablegate.dashboard.i18n`
merges them into the one the pages translate with."""
