"""Importers: read what sites send (Excel, SAS, SPSS, Stata, CSV) into typed forms with lineage.

See :mod:`trialkit.importers.base` for the contract every importer fulfils.
"""
