# Reference values from R's survey package for tests/analysis/test_reference.py.
# Run from this folder: Rscript make_reference.R   (R 4.2, survey 4.1 from Debian packages)
suppressMessages(library(survey))
r <- read.csv("small_responses.csv", colClasses = "character")
items <- grep("^q[0-9]+$", names(r), value = TRUE)
for (i in items) r[[i]] <- as.numeric(r[[i]])
r$score <- rowMeans(r[, items], na.rm = TRUE)
r <- r[!is.nan(r$score), ]
m <- read.csv("small_margins.csv", colClasses = c("character", "character", "numeric"))
pm <- function(v) { x <- m[m$variable == v, ]; d <- data.frame(x$category, x$total); names(d) <- c(v, "Freq"); d }
d <- svydesign(ids = ~1, weights = ~1, data = r)
dr <- rake(d, list(~community, ~sex, ~age_band), list(pm("community"), pm("sex"), pm("age_band")),
           control = list(maxit = 100, epsilon = 1e-11))
by_street <- svyby(~score, ~street, dr, svymean, vartype = "se")
by_comm_q03 <- svyby(~q03, ~community, dr, svymean, vartype = "se", na.rm = TRUE)
city_q07 <- svymean(~q07, dr, na.rm = TRUE)
out <- rbind(
  data.frame(what = "street_score", domain = by_street$street, estimate = by_street$score, se = by_street$se),
  data.frame(what = "community_q03", domain = by_comm_q03$community, estimate = by_comm_q03$q03, se = by_comm_q03$se),
  data.frame(what = "city_q07", domain = "ALL", estimate = coef(city_q07)[[1]], se = SE(city_q07)[[1]]))
write.csv(out, "small_r_estimates.csv", row.names = FALSE)
write.csv(data.frame(respondent_id = r$respondent_id, weight = weights(dr)), "small_r_weights.csv", row.names = FALSE)
