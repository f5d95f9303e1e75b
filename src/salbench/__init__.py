"""salbench: do saliency maps point at the lesion, and can saliency metrics be trusted?"""

__version__ = "0.1.0"
