"""Labels: automatic real/bogus labels, their purity filters and data-driven augmentation."""
