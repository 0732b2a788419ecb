"""The guide site: generated from the labs and the README, in English and Chinese (``site``)."""
