"""SeqIO task and mixture registrations; importing a module registers its tasks.

``import tasks`` registers everything; gin files import the modules they need by name.
"""

from tasks import demo, studies  # noqa: F401
