"""The CalDAV/CardDAV plugin: calendars, task lists and address books of the store over WebDAV."""
