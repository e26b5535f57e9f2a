# One date format on every page (portal, console, reports), with the zone shown: the pages
# render times in the viewer's zone (tenants.middleware.ViewerTimezoneMiddleware).
DATE_FORMAT = "j M Y"
DATETIME_FORMAT = "j M Y H:i T"
SHORT_DATE_FORMAT = "j M Y"
SHORT_DATETIME_FORMAT = "j M Y H:i T"
TIME_FORMAT = "H:i"
MONTH_DAY_FORMAT = "j M"
YEAR_MONTH_FORMAT = "M Y"
