"""The model zoo: the shipped models (:mod:`~caesar_mrcnn.zoo.lookup`) and the tool that packs
them (:mod:`~caesar_mrcnn.zoo.pack`)."""
