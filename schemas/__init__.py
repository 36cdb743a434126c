"""The ANK-SJIA-01 study definition (forms, protocol parameters, rules).

This folder is data for the trialkit engine, which loads it by path (see ``trialkit.study``); it is
installed inside the package as ``trialkit/_bundled_study`` and is never imported by name.
"""
