"""The classroom: the instructor's machine serves the room its artifact cache and shows
the students' lab progress live (``server``, ``store``); a student's kit joins it, fills its
cache from it and shares its `lab.check` results (``client``)."""
