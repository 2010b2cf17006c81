"""seaborn, imported by the plots that draw with it: it brings scipy.stats (about 2.5 s of
imports), which a page that draws none of those plots need not load."""


def seaborn():
    import seaborn as sns

    return sns
