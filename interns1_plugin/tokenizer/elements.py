"""Element symbols the SMILES auto-detection is built from.

Kept apart from the rules and the scanner because both read them, and because the reference's
behaviour depends on exactly this set (the whole periodic table, plus the aromatic lowercase atoms).
"""

from __future__ import annotations

from typing import Final

#: Every element symbol, hydrogen to oganesson.
ELEMENTS: Final = frozenset(
    """
    H He Li Be B C N O F Ne Na Mg Al Si P S Cl Ar K Ca Sc Ti V Cr Mn Fe Co Ni Cu Zn Ga Ge As Se
    Br Kr Rb Sr Y Zr Nb Mo Tc Ru Rh Pd Ag Cd In Sn Sb Te I Xe Cs Ba La Ce Pr Nd Pm Sm Eu Gd Tb Dy
    Ho Er Tm Yb Lu Hf Ta W Re Os Ir Pt Au Hg Tl Pb Bi Po At Rn Fr Ra Ac Th Pa U Np Pu Am Cm Bk Cf
    Es Fm Md No Lr Rf Db Sg Bh Hs Mt Ds Rg Cn Nh Fl Mc Lv Ts Og
    """.split()
)

#: Lowercase atoms SMILES writes for aromatic rings.
AROMATIC: Final = frozenset("bcnops")
