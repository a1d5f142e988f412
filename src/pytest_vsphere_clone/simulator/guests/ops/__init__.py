"""Guest Operations inside a guest: logins, starting and listing programs, and file operations.

- ``operations``: ``GuestOperations``, the methods ``Guest`` answers them with (the entry point).
- ``launch``: StartProgramInGuest, spawning a program the way VMware Tools does (Linux and Windows).
- ``programs``: exit codes and the listing of programs that have ended (ListProcessesInGuest).
- ``files``: file operations, each run by ``file_child.py`` as the guest user in the guest's view.
"""
