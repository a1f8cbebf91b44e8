"""Binary classification from merged classes (the paper's Table 4): toy MLPs and CNNs."""
